//! The identity service and the caller's authorisation context.
//!
//! [`Identity`] owns everything Keystone-shaped: tokens (256 random bits,
//! handed to the client once and stored only as their SHA-256), argon2id
//! password hashes, projects, users, roles and grants, and the [`policy`]
//! deciding who may do what with them. Every API request resolves its token
//! into an [`AuthContext`]; the other services apply their own rules to it
//! (reads, writes, admin). Requests come in as the typed requests of
//! `stratus_api::identity` and resources go out as its resource types, so
//! the HTTP layer only parses and renders. Errors are one [`AuthError`].

mod app_creds;
mod bootstrap;
mod context;
mod error;
mod keystone;
mod login;
pub mod policy;
mod projects;
mod roles;
mod secret;
mod service;
mod tokens;
mod users;

pub use bootstrap::bootstrap_user;
pub use context::{AppCredRef, AuthContext, ROLE_ADMIN, ROLE_MANAGER, ROLE_MEMBER, ROLE_READER};
pub use error::{AuthError, ResourceKind};
pub use keystone::{Keystone, KeystoneConfig, TokenValidator};
pub use login::LoginLimits;
pub use secret::{hash_password, random_secret, token_hash, verify_password};
pub use service::Identity;
pub use tokens::{IssuedToken, ProjectScope};

#[cfg(test)]
mod tests;
