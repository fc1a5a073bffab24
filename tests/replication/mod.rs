//! Shared harness for the JetStream replication tests (`mod replication;` in a test file).

pub mod cluster;
pub mod pair;
