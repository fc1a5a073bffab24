use std::time::Duration;

use super::*;
use crate::demo::host::LoadAvg;

/// The demo's default layout on 2 cores: shards on 0 and 1, control and load on 1.
fn shared_setup() -> Setup {
    Setup {
        debug_build: false,
        shard_cores: vec![0, 1],
        control_core: 1,
        load_cores: vec![1],
    }
}

fn host(load: f64, steal: f64, runnable: f64) -> Host {
    Host {
        online_cores: 2,
        load: LoadAvg {
            one: load,
            five: load,
            fifteen: load,
        },
        steal_pct: Some(steal),
        run_steal_pct: None,
        runnable,
        window: Duration::from_secs(1),
    }
}

fn quiet() -> Host {
    host(0.3, 0.1, 0.2)
}

fn verified() -> Vec<ShardReplay> {
    ["none", "none", "group", "group"]
        .iter()
        .enumerate()
        .map(|(i, phase)| ShardReplay {
            phase,
            shard: i % 2,
            failure: None,
        })
        .collect()
}

/// Figures at `scale` times the top of each range of `layout` (0.5: well inside).
fn figures_at(layout: Layout, scale: f64) -> Figures {
    let hi = |f| expected(f, layout).unwrap().0.hi * scale;
    let floor = (10.0, 100.0);
    Figures {
        client_p50_us: hi(Figure::ClientP50) * floor.0,
        client_p99_us: hi(Figure::ClientP99) * floor.1,
        floor_us: Some(floor),
        engine_us: Some((hi(Figure::EngineP50), hi(Figure::EngineP99))),
        commit_wait_us: Some((hi(Figure::CommitWaitP50), hi(Figure::CommitWaitP99))),
        replay: verified(),
    }
}

fn causes(judgements: &[Judgement]) -> Vec<String> {
    judgements
        .iter()
        .filter_map(|j| match &j.mark {
            Mark::Slow { cause } => Some(cause.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn quiet_host_and_figures_in_range_are_all_ok() {
    let js = judge(&shared_setup(), &quiet(), &figures_at(Layout::Shared, 0.5));
    assert_eq!(js.len(), Figure::ALL.len());
    for (j, f) in js.iter().zip(Figure::ALL) {
        assert_eq!(j.figure, f);
        assert_eq!(j.mark, Mark::Ok, "{}", j.line());
        assert!(j.line().starts_with("verdict: ") && j.line().ends_with(": OK"));
    }
    assert!(!any_failed(&js));
}

#[test]
fn busy_host_and_slow_figures_name_the_busy_host() {
    let js = judge(
        &shared_setup(),
        &host(6.0, 0.1, 0.2),
        &figures_at(Layout::Shared, 3.0),
    );
    let slow = causes(&js);
    assert_eq!(slow.len(), 6, "every ranged figure is slow: {js:#?}");
    for cause in &slow {
        assert!(cause.contains("busy host"), "{cause}");
        assert!(cause.contains("load average 6.00 on 2 cores"), "{cause}");
        assert!(cause.contains("shared cores"), "{cause}");
        assert!(!cause.contains("not explained"), "{cause}");
    }
    assert_eq!(js[6].mark, Mark::Ok, "the replay still verified");
    assert!(!any_failed(&js), "SLOW is a judgement, not a failure");
}

#[test]
fn each_busy_reading_is_named() {
    let slow = figures_at(Layout::Shared, 3.0);
    let steal = causes(&judge(&shared_setup(), &host(0.3, 8.0, 0.2), &slow));
    assert!(steal[0].contains("CPU steal 8.0 %"), "{}", steal[0]);
    let runnable = causes(&judge(&shared_setup(), &host(0.3, 0.1, 3.0), &slow));
    assert!(
        runnable[0].contains("3.0 runnable threads"),
        "{}",
        runnable[0]
    );
    let mut during = quiet();
    during.run_steal_pct = Some(12.0);
    let during = causes(&judge(&shared_setup(), &during, &slow));
    assert!(during[0].contains("CPU steal 12.0 %"), "{}", during[0]);
}

#[test]
fn slow_figures_on_a_quiet_host_are_not_explained_by_it() {
    let js = judge(&shared_setup(), &quiet(), &figures_at(Layout::Shared, 3.0));
    let slow = causes(&js);
    assert_eq!(slow.len(), 6);
    for cause in &slow {
        assert!(cause.starts_with("not explained by the host"), "{cause}");
        assert!(!cause.contains("busy host"), "{cause}");
    }
}

#[test]
fn a_debug_build_is_named() {
    let mut setup = shared_setup();
    setup.debug_build = true;
    let slow = causes(&judge(&setup, &quiet(), &figures_at(Layout::Shared, 3.0)));
    assert_eq!(slow.len(), 6);
    assert!(
        slow.iter().all(|c| c.starts_with("debug build")),
        "{slow:?}"
    );
}

#[test]
fn the_layout_picks_the_range() {
    let dedicated = Setup {
        debug_build: false,
        shard_cores: vec![0],
        control_core: 1,
        load_cores: vec![1],
    };
    assert_eq!(dedicated.layout(), Layout::Dedicated);
    assert!(!dedicated.control_shares_a_shard_core());
    assert_eq!(shared_setup().layout(), Layout::Shared);
    assert!(shared_setup().control_shares_a_shard_core());
    // Figures that are fine for shared cores are too slow for a dedicated load core.
    let figures = figures_at(Layout::Shared, 0.9);
    let shared = judge(&shared_setup(), &quiet(), &figures);
    assert!(shared.iter().all(|j| j.mark == Mark::Ok));
    let js = judge(&dedicated, &quiet(), &figures);
    assert!(matches!(js[0].mark, Mark::Slow { .. }), "{}", js[0].line());
    assert!(
        js[0].line().contains("with dedicated load core"),
        "{}",
        js[0].line()
    );
}

#[test]
fn a_replay_that_does_not_verify_fails_the_demo() {
    let mut figures = figures_at(Layout::Shared, 0.5);
    figures.replay[3].failure = Some("state hash 1 != live 2".into());
    let js = judge(&shared_setup(), &quiet(), &figures);
    let replay = &js[6];
    assert_eq!(replay.figure, Figure::Replay);
    match &replay.mark {
        Mark::Failed { why } => assert!(why.contains("group shard 1: state hash"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(replay.value.starts_with("3 of 4"), "{}", replay.value);
    assert!(any_failed(&js));
    figures.replay.clear();
    assert!(any_failed(&judge(&shared_setup(), &quiet(), &figures)));
}

#[test]
fn what_was_not_measured_says_so() {
    let mut figures = figures_at(Layout::Shared, 0.5);
    figures.floor_us = None;
    figures.commit_wait_us = None;
    let js = judge(&shared_setup(), &quiet(), &figures);
    for i in [0, 1, 4, 5] {
        assert!(
            matches!(js[i].mark, Mark::NotMeasured { .. }),
            "{}",
            js[i].line()
        );
    }
    assert!(js[0].line().contains("--no-baseline"));
    assert!(js[4].line().contains("--group-duration 0"));
    assert_eq!(js[2].mark, Mark::Ok);
    assert!(!any_failed(&js));
}
