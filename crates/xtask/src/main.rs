//! `cargo run -p xtask -- docs OUTDIR`: writes the `buslock` man pages
//! (`OUTDIR/man/buslock.1` and one page per subcommand) and the shell
//! completions (`OUTDIR/completions/{buslock.bash,_buslock,buslock.fish}`)
//! from the command line definition that the `buslock` binary itself uses
//! (`crates/buslock-cli/src/cli.rs`, compiled into this tool as is), so the
//! packaged docs can never disagree with the program.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

#[allow(dead_code)]
#[path = "../../buslock-cli/src/cli.rs"]
mod cli;

/// `buslock.1` and one `buslock-SUB.1` per visible subcommand (not clap's
/// own `help` subcommand).
fn write_man(cmd: &clap::Command, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let render = |cmd: clap::Command, file: &str| -> std::io::Result<()> {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page)?;
        std::fs::write(dir.join(file), page)
    };
    render(cmd.clone(), "buslock.1")?;
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        // clap names are 'static; this short-lived tool leaks a few bytes.
        let name: &'static str = Box::leak(format!("buslock-{}", sub.get_name()).into_boxed_str());
        render(sub.clone().name(name), &format!("{name}.1"))?;
    }
    Ok(())
}

fn write_completions(cmd: &mut clap::Command, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, cmd, "buslock", dir)?;
    }
    Ok(())
}

fn docs(out: &Path) -> std::io::Result<()> {
    let mut cmd = cli::Cli::command();
    cmd.build();
    write_man(&cmd, &out.join("man"))?;
    write_completions(&mut cmd, &out.join("completions"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [task, out] if task == "docs" => match docs(&PathBuf::from(out)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xtask: cannot write the docs into {out}: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: cargo run -p xtask -- docs OUTDIR");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod xtask_tests {
    #[test]
    fn docs_name_every_subcommand() {
        let out = tempfile_dir();
        super::docs(&out).unwrap();
        let page = std::fs::read_to_string(out.join("man/buslock.1")).unwrap();
        let pages: Vec<_> = std::fs::read_dir(out.join("man"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            !pages
                .iter()
                .any(|p| p.contains("help") || p.starts_with("buslock-__")),
            "pages for clap's help or hidden commands: {pages:?}"
        );
        for sub in [
            "list", "state", "hold", "run", "watch", "stats", "doctor", "demo",
        ] {
            assert!(page.contains(sub), "buslock.1 lacks {sub}");
            assert!(
                out.join(format!("man/buslock-{sub}.1")).is_file(),
                "no page for {sub}"
            );
        }
        let bash = std::fs::read_to_string(out.join("completions/buslock.bash")).unwrap();
        assert!(bash.contains("--dir") && bash.contains("doctor"));
        assert!(out.join("completions/_buslock").is_file());
        assert!(out.join("completions/buslock.fish").is_file());
        std::fs::remove_dir_all(&out).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-docs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}
