//! The delete's steps as the model runs them: the real plan
//! (`stratus_types::plan`), transformed by the broken [`Config`] variants and
//! refined into model steps.

use super::*;
use stratus_types::plan::{DeleteFacts, DeletePath, DeleteStep as CodeStep, delete_plan, remaining};

/// The real delete plan (`stratus_types::plan::delete_plan`, the function
/// the controller runs) for the modelled server: one volume attached, no
/// move in progress, no shelve snapshot. On the remote path the model's
/// message exchange stands for the `terminate` step, so the plan starts after it.
pub(crate) fn code_plan(path: Path) -> Vec<CodeStep> {
    let facts = DeleteFacts { open_migrations: 0, shelve_snapshot: false, volumes: true };
    let real = match path {
        Path::Remote => DeletePath::Remote,
        Path::Local => DeletePath::Local,
    };
    remaining(&delete_plan(real, facts), Some(CodeStep::Terminate))
}

/// The deliberately broken [`Config`]s, as transformations of the real plan.
pub(crate) fn broken(cfg: &Config, mut plan: Vec<CodeStep>) -> Vec<CodeStep> {
    if !cfg.record_zombie {
        plan.retain(|s| *s != CodeStep::LocalDelete);
    }
    if !cfg.fence {
        plan.retain(|s| *s != CodeStep::Fence);
    }
    if cfg.release_before_fence
        && let (Some(f), Some(v)) =
            (plan.iter().position(|s| *s == CodeStep::Fence), plan.iter().position(|s| *s == CodeStep::Volumes))
    {
        let volumes = plan.remove(v);
        plan.insert(f.min(v), volumes);
    }
    plan
}

/// What each step of the real plan does in the model. `release` is one
/// transaction in the code; the model splits it in two so that a crash may
/// fall between marking the server deleted and finishing (more behaviours
/// than the code has, so safety here implies safety there).
pub(crate) fn refine(step: CodeStep) -> &'static [DeleteStep] {
    use DeleteStep::*;
    match step {
        CodeStep::LocalDelete => &[RecordZombie],
        CodeStep::Fence => &[Fence],
        CodeStep::Volumes => &[Detach],
        CodeStep::Release => &[MarkDeleted, Finish],
        // Not part of the modelled server's plan (see `code_plan`).
        CodeStep::CleanMigration | CodeStep::DeleteShelveSnapshot | CodeStep::Terminate => &[],
    }
}

/// The order of steps on `path` for this protocol variant: the real plan,
/// transformed by the broken variants, refined into model steps.
pub(crate) fn plan(cfg: &Config, path: Path) -> Vec<DeleteStep> {
    broken(cfg, code_plan(path)).into_iter().flat_map(|s| refine(s).iter().copied()).collect()
}

pub(crate) fn first_step(cfg: &Config, path: Path) -> Pc {
    plan(cfg, path).first().map_or(Pc::Done, |&step| Pc::Run { path, step })
}

pub(crate) fn step_after(cfg: &Config, path: Path, step: DeleteStep) -> Pc {
    let p = plan(cfg, path);
    let next = p.iter().position(|&s| s == step).and_then(|i| p.get(i + 1));
    next.map_or(Pc::Done, |&step| Pc::Run { path, step })
}
