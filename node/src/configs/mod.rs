//! The config center: configs addressed by (namespace, group, dataId), md5, history, gray
//! versions, and the long-polling wire format. Persistence goes through Raft.

pub mod command;
mod history_index;
pub mod listeners;
pub mod longpoll;
pub mod model;
pub mod retention;
pub mod service;
pub mod store;
pub mod validate;
