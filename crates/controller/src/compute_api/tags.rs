//! Server tags (microversion 2.26): the `/servers/{id}/tags` sub-resource.
//! Reading needs only to see the server; changing needs a project member
//! and a server in one of the states Nova allows tag changes in.

use super::{ComputeApi, ComputeError};
use stratus_api::compute::MAX_TAGS;
use stratus_auth::AuthContext;
use stratus_db::{ServerRow, TagAdded};
use stratus_types::{VmState, invalid_state_message};

/// What adding one tag did (Nova answers 201 with a Location, or 204).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagSet {
    /// The tag is new on the server.
    Created,
    /// The server already held it.
    Existed,
}

impl ComputeApi {
    /// The tags of a server the caller may see, sorted.
    pub async fn server_tags(&self, ctx: &AuthContext, id: &str) -> Result<Vec<String>, ComputeError> {
        let s = self.get_visible(ctx, id).await?;
        Ok(self.ds.server_tags(&s.id).await?)
    }

    /// Does the server hold `tag`? A 404 naming the tag when not.
    pub async fn server_tag_check(&self, ctx: &AuthContext, id: &str, tag: &str) -> Result<(), ComputeError> {
        let tags = self.server_tags(ctx, id).await?;
        if tags.iter().any(|t| t == tag) {
            Ok(())
        } else {
            Err(ComputeError::ServerTagNotFound { server: id.to_string(), tag: tag.to_string() })
        }
    }

    /// Replace all of a server's tags (`PUT /servers/{id}/tags`); the tags
    /// were checked by the wire type. Returns the tags now held.
    pub async fn server_tags_replace(
        &self,
        ctx: &AuthContext,
        id: &str,
        tags: Vec<String>,
    ) -> Result<Vec<String>, ComputeError> {
        let s = self.tag_change_target(ctx, id, "update_all").await?;
        self.ds.server_tags_replace(&s.id, &tags).await?;
        Ok(self.ds.server_tags(&s.id).await?)
    }

    /// Add one (checked) tag (`PUT /servers/{id}/tags/{tag}`); a server
    /// holding [`MAX_TAGS`] already refuses a new one with Nova's 400.
    pub async fn server_tag_add(&self, ctx: &AuthContext, id: &str, tag: &str) -> Result<TagSet, ComputeError> {
        let s = self.tag_change_target(ctx, id, "update").await?;
        let max = i64::try_from(MAX_TAGS).unwrap_or(i64::MAX);
        match self.ds.server_tag_add(&s.id, tag, max).await? {
            TagAdded::Added => Ok(TagSet::Created),
            TagAdded::AlreadyThere => Ok(TagSet::Existed),
            TagAdded::TooMany => {
                Err(ComputeError::BadRequest(format!("The number of tags exceeded the per-server limit {MAX_TAGS}")))
            }
        }
    }

    /// Remove one tag (`DELETE /servers/{id}/tags/{tag}`); 404 when the server lacks it.
    pub async fn server_tag_delete(&self, ctx: &AuthContext, id: &str, tag: &str) -> Result<(), ComputeError> {
        let s = self.tag_change_target(ctx, id, "delete").await?;
        if self.ds.server_tag_delete(&s.id, tag).await? {
            Ok(())
        } else {
            Err(ComputeError::ServerTagNotFound { server: id.to_string(), tag: tag.to_string() })
        }
    }

    /// Remove every tag (`DELETE /servers/{id}/tags`).
    pub async fn server_tags_clear(&self, ctx: &AuthContext, id: &str) -> Result<(), ComputeError> {
        let s = self.tag_change_target(ctx, id, "delete_all").await?;
        Ok(self.ds.server_tags_replace(&s.id, &[]).await?)
    }

    /// May the caller change this server's tags? It sees the server (else
    /// 404) and is a member (else 403). Handlers ask before reading a body,
    /// so neither answer hides behind a 400 about it.
    pub async fn authorize_tag_change(
        &self,
        ctx: &AuthContext,
        id: &str,
        method: &str,
    ) -> Result<ServerRow, ComputeError> {
        let s = self.get_visible(ctx, id).await?;
        if !ctx.can_write() {
            return Err(ComputeError::Forbidden(format!(
                "Policy doesn't allow os_compute_api:os-server-tags:{method} to be performed."
            )));
        }
        Ok(s)
    }

    /// The server a tag change applies to: [`ComputeApi::authorize_tag_change`],
    /// and the server active, paused, suspended or stopped (Nova's states
    /// for tag changes; 409 otherwise).
    async fn tag_change_target(&self, ctx: &AuthContext, id: &str, method: &str) -> Result<ServerRow, ComputeError> {
        let s = self.authorize_tag_change(ctx, id, method).await?;
        if !matches!(s.vm_state, VmState::Active | VmState::Paused | VmState::Suspended | VmState::Stopped) {
            return Err(ComputeError::Conflict(invalid_state_message("vm_state", s.vm_state.as_str(), method, &id)));
        }
        Ok(s)
    }
}
