//! TEMPORARY stub (replaced on merge).
#![allow(missing_docs)]
pub mod config {
    #[derive(serde::Deserialize, Clone, Debug, Default)]
    #[serde(deny_unknown_fields, default)]
    pub struct ExternalStreamsConfig {
        pub source_on_demand: bool,
    }
}
pub mod store {
    #[derive(Clone, Debug)]
    pub struct ExternalStream {
        pub name: String,
        pub url: String,
    }
    #[derive(Default)]
    pub struct Store;
    impl Store {
        pub fn load(_p: &std::path::Path) -> Store {
            Store
        }
        pub fn added(&self) -> Vec<ExternalStream> {
            Vec::new()
        }
        pub fn touch(&self, _n: &str, _ms: u64) {}
    }
}
