//! One module per subcommand.

pub mod audit;
pub mod client;
pub mod demo;
pub mod rehearse;
pub mod run;
pub mod schema;
pub mod timeline;
pub mod validate;
