//! One module per subcommand.

pub mod audit;
pub mod schema;
pub mod timeline;
pub mod validate;
