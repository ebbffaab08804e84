//! One module per subcommand.

pub mod audit;
pub mod client;
pub mod run;
pub mod schema;
pub mod timeline;
pub mod validate;
