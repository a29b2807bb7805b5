//! Naming: the registry of services and instances, independent of any wire format.

pub mod dirty;
pub mod health;
pub mod model;
pub mod persist;
pub mod registry;
pub mod validate;

pub use dirty::{DirtySet, PushTask};
pub use model::{ClientId, Instance, ServiceKey, ServiceMeta};
pub use registry::replica::ClientData;
pub use registry::{Registry, Settings};
