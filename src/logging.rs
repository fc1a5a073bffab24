//! The process's `tracing` subscriber: the `[log]` filter and format, events written through
//! [`veloz_engine::logging`]'s bounded queue (a full queue drops and counts, never waits).
//!
//! Two formats:
//! - `text`: `veloz: [shard N: ][warning: |error: |FATAL: ]message`, the message alone
//!   (it carries the same values as the fields, in words). No timestamp: on a terminal it is
//!   noise, and under systemd the journal stamps every line;
//! - `json`: one object per line, `{"timestamp", "level", "message", <fields>, "target",
//!   "threadName"}` (the fields flattened beside the message).
//!
//! A non-empty `RUST_LOG` replaces `log.filter`; `veloz serve --log-format` replaces
//! `log.format`.

use std::fmt;
use std::time::Duration;

use anyhow::Context;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use veloz_config::{LogConfig, LogFormat};
use veloz_engine::logging::{self as queue, LogWriter};

/// How long the exit waits for queued lines to reach stderr (it may be blocked for good).
const EXIT_FLUSH: Duration = Duration::from_secs(2);

/// Install the subscriber for this process (once; a second call changes nothing).
/// `format` overrides `config.format`.
pub fn init(config: &LogConfig, format: Option<LogFormat>) -> anyhow::Result<()> {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let (origin, directives) = match &from_env {
        Some(v) => ("RUST_LOG", v.as_str()),
        None => ("log.filter", config.filter.as_str()),
    };
    let filter = EnvFilter::builder()
        .parse(directives)
        .with_context(|| format!("{origin} = {directives:?} is not a valid log filter"))?;
    if !queue::start(config.queue_lines, Box::new(std::io::stderr())) {
        return Ok(());
    }
    let layer = match format.unwrap_or(config.format) {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .event_format(TextFormat)
            .with_writer(|| LogWriter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_thread_names(true)
            .with_writer(|| LogWriter)
            .boxed(),
    };
    // Fails only if a subscriber is already installed: then that one stays.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init();
    Ok(())
}

/// At exit: let the writer thread write what is queued (bounded wait).
pub fn flush() {
    queue::flush(EXIT_FLUSH);
}

/// The `text` format (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct TextFormat;

impl<S, N> FormatEvent<S, N> for TextFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = TextFields::default();
        event.record(&mut fields);
        write!(writer, "veloz: ")?;
        if let Some(shard) = fields.shard {
            write!(writer, "shard {shard}: ")?;
        }
        let level = *event.metadata().level();
        let tag = match level {
            _ if fields.fatal => "FATAL: ",
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            Level::INFO => "",
            Level::DEBUG => "debug: ",
            Level::TRACE => "trace: ",
        };
        writeln!(writer, "{tag}{}", fields.message)
    }
}

/// The fields the text format shows: the message, the shard (as a prefix), `fatal`.
#[derive(Debug, Default)]
struct TextFields {
    message: String,
    shard: Option<u64>,
    fatal: bool,
}

impl Visit for TextFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            use std::fmt::Write as _;
            let _ = write!(self.message, "{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "shard" {
            self.shard = Some(value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "shard" {
            self.shard = u64::try_from(value).ok();
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "fatal" {
            self.fatal = value;
        }
    }
}
