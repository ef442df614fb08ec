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
use crate::client::{Client, read};
use crate::output::{self, Format, cell, show};

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
    let result: pave_api::ApplyResult = read(&result, "apply")?;
    let dry = result.dry_run;
    for change in result.changes.iter().filter(|c| c.action != "unchanged") {
        let kind = change.kind.to_lowercase();
        print_change(&kind, &change.name, &change.action, &change.fields, dry);
    }
    for w in &result.warnings {
        eprintln!(
            "warning: flag {} in {}: {}",
            output::clean(&w.flag),
            output::clean(&w.environment),
            output::clean(&w.message)
        );
    }
    let s = result.summary;
    println!(
        "{} created, {} updated, {} deleted, {} unchanged{}",
        s.created,
        s.updated,
        s.deleted,
        s.unchanged,
        if dry { " (dry run: nothing was changed)" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

/// `kind/name created` (or `would be created` in a dry run), then each changed field.
fn print_change(kind: &str, name: &str, action: &str, fields: &[pave_api::catalog::FieldChange], dry_run: bool) {
    let verb = match (action, dry_run) {
        ("create", false) => "created",
        ("update", false) => "updated",
        ("delete", false) => "deleted",
        ("create", true) => "would be created",
        ("update", true) => "would be updated",
        ("delete", true) => "would be deleted",
        (other, _) => other,
    };
    println!("{}/{} {verb}", output::clean(kind), output::clean(name));
    for f in fields {
        println!("    {}: {} -> {}", output::clean(&f.path), field_value(f.old.as_ref()), field_value(f.new.as_ref()));
    }
}

/// A changed field's old or new value, for people: `(none)` when it is absent.
fn field_value(v: Option<&Value>) -> String {
    v.map_or_else(|| "(none)".to_owned(), |v| output::clean(&v.to_string()).into_owned())
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
    let page: pave_api::EventPage = read(&value, "the event log")?;
    output::typed_list(args.client.output, &value, &page.events, &["ID", "TIME", "KIND", "SUBJECT", "ACTOR"], |e| {
        vec![
            e.id.to_string(),
            show(&e.time),
            output::clean(&e.kind).into_owned(),
            output::clean(&e.subject).into_owned(),
            output::clean(&e.actor).into_owned(),
        ]
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
    let page: pave_api::AuditPage = read(&value, "the audit trail")?;
    output::typed_list(
        args.client.output,
        &value,
        &page.entries,
        &["TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "REQUEST"],
        |e| {
            vec![
                show(&e.time),
                show(&e.actor),
                show(&e.action),
                show(&e.target),
                format!("{} {}", show(&e.outcome), e.status),
                show(&e.request_id),
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
            let role = pave_model::Role::parse(&role)
                .with_context(|| format!("role {role:?} is not one of viewer, developer, admin"))?;
            let body = serde_json::to_value(pave_api::NewToken { name, role, user, team })?;
            let v = client.call(Method::POST, "/api/v1/tokens", Some(&body)).await?;
            if args.output.structured() {
                output::json(&v);
            } else {
                let created: pave_api::CreatedToken = read(&v, "the new token")?;
                let t = &created.token;
                println!(
                    "Created token {} ({}, role {}, {}). Its secret is shown only now:\n\n    {}\n",
                    show(&t.id),
                    show(&t.name),
                    show(&t.role),
                    scope_cell(&t.scope),
                    show(&created.secret)
                );
                if let Some(note) = &t.note {
                    println!("Note: {note}");
                }
            }
        }
        TokenCommand::List { client: args } => {
            let v = Client::new(&args)?.get("/api/v1/tokens").await?;
            let list: pave_api::TokenList = read(&v, "the token list")?;
            let headers = ["ID", "NAME", "ROLE", "SCOPE", "CREATED", "BY", "REVOKED"];
            output::typed_list(args.output, &v, &list.tokens, &headers, |t| {
                vec![
                    show(&t.id),
                    show(&t.name),
                    show(&t.role),
                    scope_cell(&t.scope),
                    show(&t.created_at),
                    show(&t.created_by),
                    show(&t.revoked_at),
                ]
            });
            let notes: Vec<&str> = list.tokens.iter().filter_map(|t| t.note.as_deref()).collect();
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
            let me: pave_api::WhoAmI = read(&v, "whoami")?;
            let scope = scope_cell(&me.scope);
            println!("{} ({}), {scope}, token {}", show(&me.name), show(&me.role), show(&me.token_id));
            if !me.teams.is_empty() {
                println!(
                    "teams: {}{}",
                    output::clean(&me.teams.join(", ")),
                    if me.platform { " (platform)" } else { "" }
                );
            }
            if let Some(note) = &me.note {
                println!("{note}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `unscoped`, `user alice@example.com` or `team web`: whom a token acts for.
fn scope_cell(s: &pave_api::admin::TokenScope) -> String {
    let named = |who: &Option<String>| who.as_deref().map_or("-".into(), |w| output::clean(w).into_owned());
    match s.scope.as_str() {
        "user" => format!("user {}", named(&s.user)),
        "team" => format!("team {}", named(&s.team)),
        other => output::clean(other).into_owned(),
    }
}
