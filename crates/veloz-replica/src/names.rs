//! Names in NATS: one stream and subject per shard of an engine, the lease key, message ids.
//!
//! They are a contract between a primary, its standby and every reader of the streams:
//! changing one strands the data under the old name.

use veloz_core::Seq;

/// Header of a leader marker: a message with no records that a new primary publishes to
/// each stream (with the expected last sequence) before it serves; its value is
/// `<node> epoch <n>`.
pub const LEADER_HEADER: &str = "Veloz-Leader";

/// The stream of `shard` of `engine`.
pub fn stream(engine: &str, shard: u16) -> String {
    format!("VELOZ_{engine}_{shard}")
}

/// The subject the stream of `shard` of `engine` holds.
pub fn subject(engine: &str, shard: u16) -> String {
    format!("veloz.{engine}.{shard}")
}

/// `Nats-Msg-Id` of the message whose first record is `first`, published under lease
/// `epoch`: the same for every retry of that message, so JetStream stores it once. Each
/// message also names the id of the message it must follow (`Nats-Expected-Last-Msg-Id`),
/// which chains a primary's messages: one refused breaks the chain for every later one.
pub fn message_id(engine: &str, shard: u16, epoch: u64, first: Seq) -> String {
    format!("{engine}.{shard}.{epoch}.{first}")
}

/// `Nats-Msg-Id` of a leader marker.
pub fn marker_id(engine: &str, shard: u16, node: &str, epoch: u64) -> String {
    format!("{engine}.{shard}.leader.{epoch}.{node}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable() {
        assert_eq!(stream("eq-a", 3), "VELOZ_eq-a_3");
        assert_eq!(subject("eq-a", 3), "veloz.eq-a.3");
        assert_eq!(message_id("eq-a", 3, 2, 42), "eq-a.3.2.42");
        assert_eq!(marker_id("e", 0, "h:/d", 2), "e.0.leader.2.h:/d");
    }
}
