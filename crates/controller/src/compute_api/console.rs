//! `os-getConsoleOutput`: a synchronous read of the VM's serial console,
//! asked of the server's host over the bus (the host keeps the log; no
//! operation, no state change).

use super::{ComputeApi, ComputeError};
use bytes::Bytes;
use stratus_auth::AuthContext;
use stratus_bus::BusError;
use stratus_types::TaskState;
use stratus_types::agent::{ConsoleReply, ConsoleRequest, agent_console_subject};

impl ComputeApi {
    /// The server's console log, its last `length` lines if given. 404 for a
    /// server the caller cannot see (or whose host has no VM of it), 403 for a
    /// reader (Nova's default for os-console-output is PROJECT_MEMBER_OR_ADMIN:
    /// the console may show secrets a read-only role must not get), 409 when
    /// the server has no host (not scheduled yet, shelved offloaded), is being
    /// deleted, or its host does not answer within the rpc timeout.
    pub async fn console_output(
        &self,
        ctx: &AuthContext,
        id: &str,
        length: Option<usize>,
    ) -> Result<String, ComputeError> {
        let server = self.get_visible(ctx, id).await?;
        if !ctx.can_write() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow os_compute_api:os-console-output to be performed.".into(),
            ));
        }
        if server.task_state == Some(TaskState::Deleting) {
            return Err(ComputeError::Conflict(format!(
                "Cannot 'os-getConsoleOutput' instance {} while it is in task_state deleting",
                server.id
            )));
        }
        let Some(host) = server.host.as_deref() else {
            return Err(ComputeError::Conflict(format!(
                "Instance {} is not ready: it has no compute host (vm_state {})",
                server.id,
                server.vm_state.as_str()
            )));
        };
        let req = ConsoleRequest { server_id: server.id, max_lines: length };
        let body = serde_json::to_vec(&req).map_err(|e| ComputeError::Conflict(format!("console request: {e}")))?;
        let timeout = self.cfg.command_ack_timeout;
        let unreachable = |why: String| {
            ComputeError::Conflict(format!(
                "The console of instance {} cannot be read: compute host {host} {why}",
                server.id
            ))
        };
        let raw = match self.bus.request(&agent_console_subject(host), Bytes::from(body), timeout).await {
            Ok(b) => b,
            Err(BusError::NoResponders(_)) => return Err(unreachable("has no running agent".into())),
            Err(BusError::Timeout(..)) => {
                return Err(unreachable(format!("did not answer within {:.1} s", timeout.as_secs_f64())));
            }
            Err(e) => return Err(unreachable(format!("is unreachable: {e}"))),
        };
        match serde_json::from_slice::<ConsoleReply>(&raw) {
            Ok(ConsoleReply::Output { output }) => Ok(output),
            Ok(ConsoleReply::NoVm) => Err(ComputeError::ConsoleNotAvailable { id: server.id.to_string() }),
            Ok(ConsoleReply::Failed { message }) => Err(unreachable(format!("could not read it: {message}"))),
            Err(e) => Err(unreachable(format!("sent an answer that does not decode: {e}"))),
        }
    }
}
