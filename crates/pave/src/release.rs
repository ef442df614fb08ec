//! `pave release …`: publish an artifact as an immutable release of a service.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;

use crate::ClientArgs;
use crate::client::Client;
use crate::output::{self, Format, cell};

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Upload an artifact (a file or a directory) as release VERSION of SERVICE.
    Create {
        service: String,
        #[arg(long)]
        version: String,
        /// The file or directory to release; it is stored by content, so later changes to
        /// this path do not affect the release.
        #[arg(long)]
        artifact: PathBuf,
        /// The commit it was built from.
        #[arg(long)]
        commit: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A service's releases, newest first.
    List {
        service: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

pub async fn run(cmd: ReleaseCommand) -> Result<ExitCode> {
    match cmd {
        ReleaseCommand::Create { service, version, artifact, commit, client } => {
            let path = artifact.clone();
            let tar = tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                pave_artifacts::pack(&path, &mut out).map(|()| out)
            })
            .await?
            .with_context(|| format!("cannot read the artifact {}", artifact.display()))?;
            let mut url = format!("/api/v1/services/{service}/releases?version={}", crate::commands::encode(&version));
            if let Some(c) = &commit {
                url.push_str(&format!("&commit={}", crate::commands::encode(c)));
            }
            let v = Client::new(&client)?.post_bytes(&url, "application/x-tar", tar).await?;
            match client.output {
                Format::Json => output::json(&v),
                Format::Table => {
                    let r = &v["release"];
                    let what =
                        if v["created"].as_bool() == Some(true) { "created" } else { "already exists, unchanged" };
                    println!(
                        "release {} {} {what}: {} ({} files, {} bytes)",
                        cell(&r["service"]),
                        cell(&r["version"]),
                        cell(&r["digest"]),
                        r["files"],
                        r["bytes"]
                    );
                }
            }
        }
        ReleaseCommand::List { service, client } => {
            let v = Client::new(&client)?.get(&format!("/api/v1/services/{service}/releases")).await?;
            output::list(
                client.output,
                &v,
                "releases",
                &["VERSION", "DIGEST", "COMMIT", "FILES", "CREATED", "BY"],
                |r| {
                    vec![
                        cell(&r["version"]),
                        cell(&r["digest"]).chars().take(19).collect(),
                        cell(&r["commit"]),
                        cell(&r["files"]),
                        cell(&r["createdAt"]),
                        cell(&r["createdBy"]),
                    ]
                },
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
