//! `pave secret …`: a service's secrets per environment. Values are read from standard input
//! (never from an argument, which `ps` and shell history keep), without echo on a terminal.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use reqwest::Method;

use crate::ClientArgs;
use crate::client::{Client, read};
use crate::output::{self, Format, show};

/// Largest value read (the server refuses more than 64 KiB anyway).
const MAX_VALUE: u64 = 64 * 1024 + 2;

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Set NAME for SERVICE in an environment; the value is read from standard input
    /// (`pave secret set api DB_PASSWORD --env prod < file`, or typed without echo). Running
    /// replicas are restarted with it, one at a time.
    Set {
        /// The service's name, as in the catalog.
        service: String,
        /// The secret's name: the environment variable replicas see (`DB_PASSWORD`).
        name: String,
        /// The environment whose replicas get it (`production`).
        #[arg(long)]
        env: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A service's secrets: names, versions, who set them and when — never values.
    List {
        /// The service's name, as in the catalog.
        service: String,
        /// The environment whose replicas get it (`production`).
        #[arg(long)]
        env: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove a secret; running replicas are restarted without it.
    Rm {
        /// The service's name, as in the catalog.
        service: String,
        /// The secret's name: the environment variable replicas see (`DB_PASSWORD`).
        name: String,
        /// The environment whose replicas get it (`production`).
        #[arg(long)]
        env: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn path(service: &str, name: &str, env: &str) -> String {
    format!(
        "/api/v1/services/{}/secrets/{}?environment={}",
        pave_percent::encode(service),
        pave_percent::encode(name),
        pave_percent::encode(env)
    )
}

/// Reads one line from the terminal with echo off, restoring the terminal afterwards.
fn read_hidden(prompt: &str) -> Result<Vec<u8>> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let saved = tcgetattr(&stdin).context("cannot read the terminal's settings")?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet).context("cannot turn off the terminal's echo")?;
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    let _ = tcsetattr(&stdin, OptionalActions::Now, &saved);
    eprintln!();
    read.context("cannot read the value")?;
    Ok(line.into_bytes())
}

fn read_value(name: &str) -> Result<Vec<u8>> {
    if std::io::stdin().is_terminal() {
        return read_hidden(&format!("value of {name} (not shown): "));
    }
    let mut value = Vec::new();
    std::io::stdin().take(MAX_VALUE).read_to_end(&mut value).context("cannot read the value from standard input")?;
    if value.is_empty() {
        bail!("standard input is empty: pipe the value in, e.g. `pave secret set SERVICE {name} --env ENV < file`");
    }
    Ok(value)
}

pub async fn run(cmd: SecretCommand) -> Result<ExitCode> {
    match cmd {
        SecretCommand::Set { service, name, env, client } => {
            let value = read_value(&name)?;
            let v = Client::new(&client)?
                .send_bytes(Method::PUT, &path(&service, &name, &env), "application/octet-stream", value)
                .await?;
            match client.output {
                Format::Json | Format::Yaml => output::json(&v),
                Format::Table => {
                    let w: pave_api::SecretWrite = read(&v, "the secret")?;
                    let s = &w.secret;
                    println!(
                        "secret {} of {} in {} set: version {} (sealed under {})",
                        show(&s.name),
                        show(&s.service),
                        show(&s.environment),
                        s.version,
                        show(&s.key_id)
                    );
                    if w.rolling {
                        println!("running replicas restart with it, one at a time");
                    }
                }
            }
        }
        SecretCommand::Rm { service, name, env, client } => {
            let v = Client::new(&client)?.call(Method::DELETE, &path(&service, &name, &env), None).await?;
            match client.output {
                Format::Json | Format::Yaml => output::json(&v),
                Format::Table => {
                    println!("secret {name} of {service} in {env} removed");
                    if read::<pave_api::SecretWrite>(&v, "the removal")?.rolling {
                        println!("running replicas restart without it, one at a time");
                    }
                }
            }
        }
        SecretCommand::List { service, env, client } => {
            let mut url = format!("/api/v1/services/{}/secrets", pave_percent::encode(&service));
            if let Some(e) = &env {
                url.push_str(&format!("?environment={}", pave_percent::encode(e)));
            }
            let v = Client::new(&client)?.get(&url).await?;
            let list: pave_api::SecretList = read(&v, "the secrets")?;
            output::typed_list(
                client.output,
                &v,
                &list.secrets,
                &["ENVIRONMENT", "NAME", "VERSION", "UPDATED", "BY", "CREATED", "BY"],
                |s| {
                    vec![
                        show(&s.environment),
                        show(&s.name),
                        s.version.to_string(),
                        show(&s.updated_at),
                        show(&s.updated_by),
                        show(&s.created_at),
                        show(&s.created_by),
                    ]
                },
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
