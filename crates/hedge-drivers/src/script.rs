//! The shell that runs a task's commands where the driver owns the filesystem (local and Slurm on a shared
//! filesystem): `workdir` copied into the attempt's own directory, `file_mounts` linked into it, then
//! `setup` and `run`. Drivers that cannot reach the submitter's files (EC2) refuse those fields with
//! [`refuse_file_fields`].

use crate::{DriverError, LaunchSpec};
use hedge_core::ProviderId;

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The body of the attempt's script, run from the attempt directory `attempt_dir`: copies `workdir` to
/// `<attempt_dir>/work` and runs there, links each `file_mounts` source at its (relative) target inside it,
/// runs `setup` (a failure ends the script with its status) and then `run`. A mount target that is
/// absolute or leaves the work directory is refused, naming the field.
pub fn task_script(provider: &ProviderId, spec: &LaunchSpec) -> Result<String, DriverError> {
    let unsupported = |reason: String| DriverError::Unsupported {
        provider: provider.clone(),
        reason,
    };
    let mut s = String::new();
    s.push_str("mkdir -p work || exit 1\n");
    if let Some(w) = &spec.workdir {
        if !w.starts_with('/') {
            return Err(unsupported(format!(
                "workdir: {w:?} must be an absolute path on this provider's filesystem"
            )));
        }
        s.push_str(&format!(
            "cp -a {}/. work/ || {{ echo 'hedge: cannot copy workdir {}' >&2; exit 1; }}\n",
            quote(w),
            w.replace('\'', "")
        ));
    }
    for (target, source) in &spec.file_mounts {
        let t = target.trim_start_matches("./");
        if t.starts_with('/')
            || t.starts_with('~')
            || t.split('/').any(|c| c == "..")
            || t.is_empty()
        {
            return Err(unsupported(format!(
                "file_mounts.{target}: this provider mounts files inside the job's working directory only; use a relative target"
            )));
        }
        if !source.starts_with('/') {
            return Err(unsupported(format!(
                "file_mounts.{target}: source {source:?} must be an absolute path"
            )));
        }
        s.push_str(&format!(
            "mkdir -p \"$(dirname work/{t})\" && ln -sfn {src} work/{t} || exit 1\n",
            t = quote(t),
            src = quote(source)
        ));
    }
    s.push_str("cd work || exit 1\n");
    if let Some(setup) = spec.setup.as_deref().filter(|x| !x.trim().is_empty()) {
        s.push_str(&format!("( {}\n) || exit $?\n", setup.trim_end()));
    }
    s.push_str(&format!("{}\n", spec.run.trim_end()));
    Ok(s)
}

/// For drivers that cannot reach the submitter's files: `workdir` and `file_mounts` are refused, each by
/// name, never dropped.
pub fn refuse_file_fields(provider: &ProviderId, spec: &LaunchSpec) -> Result<(), DriverError> {
    let unsupported = |reason: String| DriverError::Unsupported {
        provider: provider.clone(),
        reason,
    };
    if let Some(w) = &spec.workdir {
        return Err(unsupported(format!(
            "workdir: {w:?} cannot be synced to this provider's instances"
        )));
    }
    if let Some(t) = spec.file_mounts.keys().next() {
        return Err(unsupported(format!(
            "file_mounts.{t}: this provider's instances cannot mount local files"
        )));
    }
    Ok(())
}
