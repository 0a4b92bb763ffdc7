//! A server's security groups (`addSecurityGroup`, `removeSecurityGroup`),
//! kept on its ports as Neutron keeps them. Stratus has no Neutron and
//! filters no traffic: each project has one group, `default`, that every
//! port starts in and that allows everything (README "Security").

use super::{ComputeApi, ComputeError};
use stratus_api::compute::DEFAULT_SECURITY_GROUP;
use stratus_auth::AuthContext;

impl ComputeApi {
    /// `addSecurityGroup` (`add`) or `removeSecurityGroup` on every port of
    /// the server, with Nova's answers (nova/network/security_group_api.py
    /// `add_to_instance` / `remove_from_instance`): an unknown group, a
    /// server without ports, or removing a group it is not in are 404s;
    /// adding a group it is already in changes nothing. Policy
    /// `os-security-groups:add|remove` PROJECT_MEMBER_OR_ADMIN.
    pub async fn change_security_group(
        &self,
        ctx: &AuthContext,
        id: &str,
        name: &str,
        add: bool,
    ) -> Result<(), ComputeError> {
        let s = self.get_visible(ctx, id).await?;
        if !ctx.can_write() {
            let rule = if add { "add" } else { "remove" };
            return Err(ComputeError::Forbidden(format!(
                "Policy doesn't allow os_compute_api:os-security-groups:{rule} to be performed."
            )));
        }
        if name != DEFAULT_SECURITY_GROUP {
            return Err(ComputeError::SecurityGroupNotFound(format!(
                "Security group {name} is not found for project {}",
                ctx.project_id
            )));
        }
        let ports = self.ds.port_list_for_server(&s.id).await?;
        if ports.is_empty() {
            return Err(ComputeError::SecurityGroupNotFound(format!(
                "instance_id {} could not be found as device id on any ports",
                s.id
            )));
        }
        let member = ports.iter().any(|p| p.security_groups().iter().any(|g| g == name));
        if !add && !member {
            return Err(ComputeError::SecurityGroupNotFound(format!(
                "Security group {name} not associated with the instance {}",
                s.id
            )));
        }
        let groups = if add { vec![name.to_string()] } else { Vec::new() };
        let changed = self.ds.port_set_security_groups(&s.id, &groups).await?;
        tracing::info!(server = %s.id, group = name, add, ports = changed, "security group changed");
        Ok(())
    }
}
