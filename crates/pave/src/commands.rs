//! Client commands: each reads its arguments, calls the server, and prints the answer.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use pave_model::Kind;
use pave_percent::encode;
use reqwest::Method;
use serde_json::{Value, json};

use crate::ClientArgs;
use crate::client::Client;
use crate::output::{self, Format, cell};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// YAML or JSON file, directory (read recursively), or `-` for stdin. Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Show what would change, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete resources that match the selector and that the files no longer declare.
    #[arg(long, requires = "selector_or_all")]
    pub prune: bool,
    /// Label selector bounding --prune (`app=shop,team!=x`).
    #[arg(short = 'l', long, group = "selector_or_all")]
    pub selector: Option<String>,
    /// With --prune: consider every resource, whatever its labels.
    #[arg(long, group = "selector_or_all")]
    pub all: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn apply(args: ApplyArgs) -> Result<ExitCode> {
    let mut docs = Vec::new();
    for path in &args.files {
        docs.extend(pave_catalog::documents::load_path(path).with_context(|| format!("reading {}", path.display()))?);
    }
    // Flags and segments go to the flag API; everything else is catalog.
    let (flag_docs, docs): (Vec<_>, Vec<_>) =
        docs.into_iter().partition(|d| matches!(d.value.get("kind").and_then(Value::as_str), Some("Flag" | "Segment")));
    let mut flag_errors = Vec::new();
    for d in &flag_docs {
        let checked = match d.value["kind"].as_str() {
            Some("Flag") => pave_model::flags::Flag::from_value(d.value.clone()).map(drop),
            _ => pave_model::flags::Segment::from_value(d.value.clone()).map(drop),
        };
        if let Err(fields) = checked {
            flag_errors.extend(fields.into_iter().map(|f| pave_catalog::DocError::new(d, f)));
        }
    }
    if !flag_errors.is_empty() {
        for e in &flag_errors {
            eprintln!("  {e}");
        }
        bail!("{} invalid document(s); nothing was applied", flag_errors.len());
    }
    let (resources, notes) = match pave_catalog::resources(&docs) {
        Ok(ok) => ok,
        Err(errors) => {
            for e in &errors {
                eprintln!("  {e}");
            }
            bail!("{} invalid document(s); nothing was applied", errors.len());
        }
    };
    for note in &notes {
        eprintln!("note: {note}");
    }
    let selector = match (args.prune, args.selector, args.all) {
        (true, Some(s), _) => Some(s),
        (true, None, true) => Some(String::new()),
        (false, None, false) => None,
        _ => bail!("--selector and --all only apply with --prune"),
    };
    // Every kind in one request, so one transaction: a refused flag leaves the catalog part
    // unwritten too.
    let mut documents: Vec<Value> = resources.iter().map(pave_model::Resource::to_value).collect();
    documents.extend(flag_docs.iter().map(|d| d.value.clone()));
    let mut body = json!({
        "documents": documents,
        "dryRun": args.dry_run,
        "prune": args.prune,
    });
    if let Some(s) = selector {
        body["selector"] = json!(s);
    }
    let client = Client::new(&args.client)?;
    let result = client.call(Method::POST, "/api/v1/apply", Some(&body)).await?;
    if args.client.output.structured() {
        output::json(&result);
        return Ok(ExitCode::SUCCESS);
    }
    let dry = result["dryRun"].as_bool().unwrap_or(false);
    for change in result["changes"].as_array().into_iter().flatten() {
        let action = change["action"].as_str().unwrap_or("");
        if action == "unchanged" {
            continue;
        }
        let kind = change["kind"].as_str().unwrap_or("").to_lowercase();
        let verb = match (action, dry) {
            ("create", false) => "created",
            ("update", false) => "updated",
            ("delete", false) => "deleted",
            ("create", true) => "would be created",
            ("update", true) => "would be updated",
            ("delete", true) => "would be deleted",
            (other, _) => other,
        };
        println!("{kind}/{} {verb}", cell(&change["name"]));
        for f in change["fields"].as_array().into_iter().flatten() {
            let show =
                |v: &Value| if v.is_null() { "(none)".to_owned() } else { output::clean(&v.to_string()).into_owned() };
            println!("    {}: {} -> {}", cell(&f["path"]), show(&f["old"]), show(&f["new"]));
        }
    }
    for w in result["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: flag {} in {}: {}", cell(&w["flag"]), cell(&w["environment"]), cell(&w["message"]));
    }
    let s = &result["summary"];
    println!(
        "{} created, {} updated, {} deleted, {} unchanged{}",
        s["created"],
        s["updated"],
        s["deleted"],
        s["unchanged"],
        if dry { " (dry run: nothing was changed)" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

fn parse_kind(s: &str) -> Result<Kind> {
    Kind::parse(s).with_context(|| format!("unknown kind {s:?}; use {}", Kind::plurals()))
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// teams, services or environments.
    pub kind: String,
    /// One resource's name; without it, list them all.
    pub name: Option<String>,
    /// Label selector for listing.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Only services owned by this team.
    #[arg(long)]
    pub owner: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn get(args: GetArgs) -> Result<ExitCode> {
    let kind = parse_kind(&args.kind)?;
    let client = Client::new(&args.client)?;
    if let Some(name) = &args.name {
        let value = client.get(&format!("/api/v1/{}/{}", kind.plural(), encode(name))).await?;
        match args.client.output {
            Format::Json => output::json(&value),
            // A document `pave apply` takes back unchanged (its `status` is ignored there).
            Format::Yaml | Format::Table => print!("{}", output::yaml(&value)),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let q = query_string(&[("selector", args.selector), ("owner", args.owner)]);
    let value = client.get(&format!("/api/v1/{}{q}", kind.plural())).await?;
    match args.client.output {
        Format::Json => {
            output::json(&value);
            return Ok(ExitCode::SUCCESS);
        }
        // A stream of documents, one per resource, that `pave apply -f` takes back unchanged.
        Format::Yaml => {
            for item in value["items"].as_array().into_iter().flatten() {
                print!("---\n{}", output::yaml(item));
            }
            return Ok(ExitCode::SUCCESS);
        }
        Format::Table => {}
    }
    let items = value["items"].as_array().cloned().unwrap_or_default();
    // The columns are the kind's (pave_model::KINDS).
    let columns = kind.info().columns;
    let headers: Vec<&str> = columns.iter().map(|c| c.header).collect();
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|i| {
            columns
                .iter()
                .map(|c| {
                    let v = i.pointer(c.pointer).unwrap_or(&Value::Null);
                    if c.count { v.as_array().map_or(0, Vec::len).to_string() } else { cell(v) }
                })
                .collect()
        })
        .collect();
    output::table(&headers, &rows);
    Ok(ExitCode::SUCCESS)
}

/// `?a=1&b=2` from the parameters that are set, percent-encoded.
pub fn query_string(params: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> =
        params.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v)))).collect();
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// team, service or environment.
    pub kind: String,
    /// The resource's name. Deleting a service or an environment stops its replicas and
    /// closes its router ports (refused while a rollout there is in progress), and removes its
    /// secrets; its releases and delivery history stay.
    pub name: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn delete(args: DeleteArgs) -> Result<ExitCode> {
    let kind = parse_kind(&args.kind)?;
    let client = Client::new(&args.client)?;
    client.call(Method::DELETE, &format!("/api/v1/{}/{}", kind.plural(), encode(&args.name)), None).await?;
    let stops = if kind == Kind::Team { "" } else { " (what ran there is being stopped)" };
    println!("{}/{} deleted{stops}", kind.noun(), output::clean(&args.name));
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only events after this id.
    #[arg(long, default_value_t = 0)]
    pub after: i64,
    /// Comma-separated kinds; `service.*` matches a prefix.
    #[arg(long)]
    pub kind: Option<String>,
    /// Only events about this subject (`service/checkout`).
    #[arg(long)]
    pub subject: Option<String>,
    /// Most events to print.
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn events(args: EventsArgs) -> Result<ExitCode> {
    let q = query_string(&[
        ("after", Some(args.after.to_string())),
        ("limit", Some(args.limit.to_string())),
        ("kind", args.kind),
        ("subject", args.subject),
    ]);
    let value = Client::new(&args.client)?.get(&format!("/api/v1/events{q}")).await?;
    output::list(args.client.output, &value, "events", &["ID", "TIME", "KIND", "SUBJECT", "ACTOR"], |e| {
        vec![cell(&e["id"]), cell(&e["time"]), cell(&e["kind"]), cell(&e["subject"]), cell(&e["actor"])]
    });
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Most entries to print (newest first).
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
    /// Only this actor's requests.
    #[arg(long)]
    pub actor: Option<String>,
    /// allowed, denied or failed.
    #[arg(long)]
    pub outcome: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn audit(args: AuditArgs) -> Result<ExitCode> {
    let q = query_string(&[("limit", Some(args.limit.to_string())), ("actor", args.actor), ("outcome", args.outcome)]);
    let value = Client::new(&args.client)?.get(&format!("/api/v1/audit{q}")).await?;
    output::list(
        args.client.output,
        &value,
        "entries",
        &["TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "REQUEST"],
        |e| {
            vec![
                cell(&e["time"]),
                cell(&e["actor"]),
                cell(&e["action"]),
                cell(&e["target"]),
                format!("{} {}", cell(&e["outcome"]), cell(&e["status"])),
                cell(&e["requestId"]),
            ]
        },
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; its secret is printed once.
    Create {
        /// A name for the token's holder (`ci`, `alice`).
        #[arg(long)]
        name: String,
        /// viewer, developer or admin.
        #[arg(long)]
        role: String,
        /// The person it acts for, as teams list members (an e-mail): a developer token then
        /// changes only services owned by that person's teams (all of them for a platform team).
        #[arg(long, conflicts_with = "team")]
        user: Option<String>,
        /// The team it acts for (a pipeline's token): a developer token then changes only that
        /// team's services. Without --user or --team a token is unscoped: every service.
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List tokens (never their secrets), with whom each acts for.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke a token by id; requests with it are refused from then on.
    Revoke {
        /// The token's id, as `pave token list` shows it (not its secret).
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

pub async fn token(cmd: TokenCommand) -> Result<ExitCode> {
    match cmd {
        TokenCommand::Create { name, role, user, team, client: args } => {
            let client = Client::new(&args)?;
            let mut body = json!({"name": name, "role": role});
            if let Some(u) = user {
                body["user"] = json!(u);
            }
            if let Some(t) = team {
                body["team"] = json!(t);
            }
            let v = client.call(Method::POST, "/api/v1/tokens", Some(&body)).await?;
            if args.output.structured() {
                output::json(&v);
            } else {
                println!(
                    "Created token {} ({}, role {}, {}). Its secret is shown only now:\n\n    {}\n",
                    cell(&v["token"]["id"]),
                    cell(&v["token"]["name"]),
                    cell(&v["token"]["role"]),
                    scope_cell(&v["token"]),
                    cell(&v["secret"])
                );
                if let Some(note) = v["token"]["note"].as_str() {
                    println!("Note: {note}");
                }
            }
        }
        TokenCommand::List { client: args } => {
            let v = Client::new(&args)?.get("/api/v1/tokens").await?;
            let headers = ["ID", "NAME", "ROLE", "SCOPE", "CREATED", "BY", "REVOKED"];
            output::list(args.output, &v, "tokens", &headers, |t| {
                vec![
                    cell(&t["id"]),
                    cell(&t["name"]),
                    cell(&t["role"]),
                    scope_cell(t),
                    cell(&t["createdAt"]),
                    cell(&t["createdBy"]),
                    cell(&t["revokedAt"]),
                ]
            });
            let notes: Vec<&str> =
                v["tokens"].as_array().into_iter().flatten().filter_map(|t| t["note"].as_str()).collect();
            if !args.output.structured()
                && let Some(note) = notes.first()
            {
                eprintln!("\n{} token(s) {note}", notes.len());
            }
        }
        TokenCommand::Revoke { id, client: args } => {
            let v = Client::new(&args)?.call(Method::DELETE, &format!("/api/v1/tokens/{}", encode(&id)), None).await?;
            if args.output.structured() {
                output::json(&v);
            } else {
                println!("token {id} revoked");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn whoami(args: WhoamiArgs) -> Result<ExitCode> {
    let v = Client::new(&args.client)?.get("/api/v1/whoami").await?;
    match args.client.output {
        Format::Json | Format::Yaml => output::json(&v),
        Format::Table => {
            println!("{} ({}), {}, token {}", cell(&v["name"]), cell(&v["role"]), scope_cell(&v), cell(&v["tokenId"]));
            let teams: Vec<&str> = v["teams"].as_array().into_iter().flatten().filter_map(|t| t.as_str()).collect();
            if !teams.is_empty() {
                println!("teams: {}{}", teams.join(", "), if v["platform"] == true { " (platform)" } else { "" });
            }
            if let Some(note) = v["note"].as_str() {
                println!("{note}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `unscoped`, `user alice@example.com` or `team web`: whom a token acts for.
fn scope_cell(t: &Value) -> String {
    match t["scope"].as_str() {
        Some(kind @ ("user" | "team")) => format!("{kind} {}", cell(&t[kind])),
        Some(other) => other.to_owned(),
        None => "unscoped".to_owned(),
    }
}
