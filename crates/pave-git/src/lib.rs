//! Reading git history fast with gitoxide (gix): tags and branches, commit metadata, and
//! which release first shipped each commit. gix finds and inflates objects; the commit and
//! tag headers are parsed here, which is all the metrics need and keeps the hot loop free of
//! allocations beyond the commit table.

use std::collections::HashMap;
use std::path::Path;

pub use gix::ObjectId;
use gix::objs::Find;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{path}: not a git repository ({reason})")]
    NotARepository { path: String, reason: String },
    #[error("cannot read references: {0}")]
    Refs(String),
    #[error("no branch or reference named {0:?}")]
    UnknownRef(String),
    #[error("object {id} is missing and the repository is not shallow: the repository is damaged")]
    Missing { id: String },
    #[error("object {id} cannot be read: {reason}")]
    Object { id: String, reason: String },
}

pub type Result<T, E = GitError> = std::result::Result<T, E>;

/// What the metrics need of a commit — kept small, as histories have millions of them.
#[derive(Debug, Clone)]
pub struct Commit {
    pub id: ObjectId,
    /// Index of the first parent in [`History::commits`], if it was read.
    pub first_parent: Option<u32>,
    /// Seconds since the epoch.
    pub author_time: i64,
    pub commit_time: i64,
    /// The first line of the message, kept only when the caller's filter asked for it.
    pub summary: Option<Box<str>>,
    /// The commit a `git revert` commit reverts (`This reverts commit <sha>.`).
    pub reverts: Option<ObjectId>,
}

/// A tag pointing (possibly through an annotated tag object) at a commit.
#[derive(Debug, Clone)]
pub struct Tag {
    pub name: String,
    pub commit: ObjectId,
    /// The tagger's time for annotated tags, the commit's time for lightweight ones.
    pub time: i64,
}

/// Parses `NAME <EMAIL> SECONDS TZ` into `(name, seconds)`.
fn signature(line: &[u8]) -> (String, i64) {
    let text = String::from_utf8_lossy(line);
    let (who, rest) = text.rsplit_once('>').map_or((text.as_ref(), ""), |(w, r)| (w, r));
    let name = who.split('<').next().unwrap_or("").trim().to_owned();
    let seconds = rest.split_whitespace().next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (name, seconds)
}

/// The header fields of a raw commit object.
struct RawCommit<'a> {
    parents: Vec<ObjectId>,
    author: &'a [u8],
    committer: &'a [u8],
    message: &'a [u8],
}

fn parse_commit(data: &[u8]) -> Option<RawCommit<'_>> {
    let mut parents = Vec::new();
    let (mut author, mut committer): (&[u8], &[u8]) = (b"", b"");
    let mut rest = data;
    loop {
        let nl = rest.iter().position(|b| *b == b'\n')?;
        let line = &rest[..nl];
        rest = &rest[nl + 1..];
        if line.is_empty() {
            break;
        }
        if let Some(p) = line.strip_prefix(b"parent ") {
            parents.push(ObjectId::from_hex(p).ok()?);
        } else if let Some(a) = line.strip_prefix(b"author ") {
            author = a;
        } else if let Some(c) = line.strip_prefix(b"committer ") {
            committer = c;
        }
    }
    Some(RawCommit { parents, author, committer, message: rest })
}

fn reverted(message: &[u8]) -> Option<ObjectId> {
    let text = String::from_utf8_lossy(message);
    let at = text.find("This reverts commit ")?;
    let hex: String = text[at + 20..].chars().take_while(char::is_ascii_hexdigit).collect();
    ObjectId::from_hex(hex.as_bytes()).ok()
}

/// An open repository.
pub struct Repo {
    repo: gix::Repository,
    shallow: bool,
}

impl Repo {
    pub fn open(path: &Path) -> Result<Repo> {
        let repo = gix::discover(path)
            .map_err(|e| GitError::NotARepository { path: path.display().to_string(), reason: e.to_string() })?;
        let shallow = repo.is_shallow().unwrap_or(false);
        Ok(Repo { repo, shallow })
    }

    /// A shallow clone lacks history beyond its boundary: metrics then cover what is there.
    pub fn is_shallow(&self) -> bool {
        self.shallow
    }

    fn raw<'b>(&self, id: &ObjectId, buf: &'b mut Vec<u8>) -> Result<Option<gix::objs::Data<'b>>> {
        self.repo.objects.try_find(id, buf).map_err(|e| GitError::Object { id: id.to_string(), reason: e.to_string() })
    }

    /// Peels an object id (tag objects included) to a commit and its time.
    fn peel(&self, mut id: ObjectId, buf: &mut Vec<u8>) -> Result<Option<(ObjectId, Option<i64>)>> {
        let mut tag_time = None;
        for _ in 0..16 {
            let Some(data) = self.raw(&id, buf)? else { return Ok(None) };
            match data.kind {
                gix::objs::Kind::Commit => return Ok(Some((id, tag_time))),
                gix::objs::Kind::Tag => {
                    let mut target = None;
                    for line in data.data.split(|b| *b == b'\n') {
                        if line.is_empty() {
                            break;
                        }
                        if let Some(o) = line.strip_prefix(b"object ") {
                            target = ObjectId::from_hex(o).ok();
                        } else if let Some(t) = line.strip_prefix(b"tagger ") {
                            tag_time = tag_time.or(Some(signature(t).1));
                        }
                    }
                    match target {
                        Some(t) => id = t,
                        None => return Ok(None),
                    }
                }
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Every tag that points at a commit, oldest first (ties by name).
    pub fn tags(&self) -> Result<Vec<Tag>> {
        let refs = self.repo.references().map_err(|e| GitError::Refs(e.to_string()))?;
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for r in refs.tags().map_err(|e| GitError::Refs(e.to_string()))? {
            let r = r.map_err(|e| GitError::Refs(e.to_string()))?;
            let name = r.name().shorten().to_string();
            let Some(id) = r.target().try_id().map(ToOwned::to_owned) else { continue };
            let Some((commit, tag_time)) = self.peel(id, &mut buf)? else { continue };
            let time = match tag_time {
                Some(t) => t,
                None => self.commit_header(&commit, &mut buf)?.map_or(0, |c| c.2),
            };
            out.push(Tag { name, commit, time });
        }
        out.sort_by(|a, b| (a.time, &a.name).cmp(&(b.time, &b.name)));
        Ok(out)
    }

    /// `(parents, author time, commit time)` of a commit, `None` if it is absent.
    fn commit_header(&self, id: &ObjectId, buf: &mut Vec<u8>) -> Result<Option<(Vec<ObjectId>, i64, i64)>> {
        let Some(data) = self.raw(id, buf)? else { return Ok(None) };
        let raw = parse_commit(data.data)
            .ok_or_else(|| GitError::Object { id: id.to_string(), reason: "not a well-formed commit".into() })?;
        Ok(Some((raw.parents, signature(raw.author).1, signature(raw.committer).1)))
    }

    /// The commit a branch, tag or other reference names.
    pub fn resolve(&self, name: &str) -> Result<ObjectId> {
        let candidates = [
            name.to_owned(),
            format!("refs/heads/{name}"),
            format!("refs/remotes/origin/{name}"),
            format!("refs/tags/{name}"),
        ];
        let mut buf = Vec::new();
        for c in candidates {
            if let Ok(mut r) = self.repo.find_reference(c.as_str())
                && let Ok(id) = r.peel_to_id()
                && let Some((commit, _)) = self.peel(id.detach(), &mut buf)?
            {
                return Ok(commit);
            }
        }
        Err(GitError::UnknownRef(name.to_owned()))
    }

    /// The first-parent chain from `tip`, newest first, with each commit's parent count and
    /// commit time.
    pub fn first_parent_chain(&self, tip: ObjectId) -> Result<Vec<(ObjectId, usize, i64)>> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        let mut cur = Some(tip);
        while let Some(id) = cur {
            let Some((parents, _, time)) = self.commit_header(&id, &mut buf)? else {
                if self.shallow {
                    break;
                }
                return Err(GitError::Missing { id: id.to_string() });
            };
            out.push((id, parents.len(), time));
            cur = parents.first().copied();
        }
        Ok(out)
    }

    /// Whether `commit` changed anything under `dir` compared with its first parent (or, for
    /// a root commit, whether `dir` exists in it).
    pub fn touches(&self, commit: &ObjectId, parent: Option<&ObjectId>, dir: &[&[u8]]) -> Result<bool> {
        let mut buf = Vec::new();
        let here = self.subtree(commit, dir, &mut buf)?;
        let there = match parent {
            Some(p) => self.subtree(p, dir, &mut buf)?,
            None => None,
        };
        Ok(here != there)
    }

    /// The object id of the tree or blob at `dir` in `commit`'s tree.
    fn subtree(&self, commit: &ObjectId, dir: &[&[u8]], buf: &mut Vec<u8>) -> Result<Option<ObjectId>> {
        let Some(data) = self.raw(commit, buf)? else { return Ok(None) };
        let tree_line = data.data.split(|b| *b == b'\n').next().and_then(|l| l.strip_prefix(b"tree "));
        let Some(mut id) = tree_line.and_then(|t| ObjectId::from_hex(t).ok()) else { return Ok(None) };
        for part in dir {
            let Some(data) = self.raw(&id, buf)? else { return Ok(None) };
            let mut entries = data.data;
            let mut found = None;
            // Entries: `<mode> <name>\0<20-byte id>`.
            while !entries.is_empty() {
                let Some(sp) = entries.iter().position(|b| *b == b' ') else { break };
                let Some(nul) = entries.iter().position(|b| *b == 0) else { break };
                let name = &entries[sp + 1..nul];
                let hash = entries.get(nul + 1..nul + 21);
                if name == *part {
                    found = hash.map(ObjectId::from_bytes_or_panic);
                    break;
                }
                entries = entries.get(nul + 21..).unwrap_or_default();
            }
            match found {
                Some(f) => id = f,
                None => return Ok(None),
            }
        }
        Ok(Some(id))
    }
}

/// A commit as a history scan reports it.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub id: ObjectId,
    pub author: String,
    pub email: String,
    /// Author time, seconds since the epoch.
    pub time: i64,
    /// The first line of the message.
    pub summary: String,
}

/// One version of one file: a blob, the path it was first seen at, and the commit (an index
/// into [`Blobs::commits`]) that first had it.
#[derive(Debug, Clone)]
pub struct BlobVersion {
    pub blob: ObjectId,
    pub path: String,
    pub commit: u32,
}

/// Every distinct file version in a repository's history.
#[derive(Debug, Default)]
pub struct Blobs {
    pub commits: Vec<CommitInfo>,
    pub blobs: Vec<BlobVersion>,
}

/// Parses `NAME <EMAIL> SECONDS TZ` into `(name, email, seconds)`.
fn identity(line: &[u8]) -> (String, String, i64) {
    let text = String::from_utf8_lossy(line);
    let (name, seconds) = signature(line);
    let email = text.split_once('<').and_then(|(_, r)| r.split_once('>')).map_or("", |(e, _)| e).to_owned();
    (name, email, seconds)
}

impl Repo {
    /// Every blob reachable from any reference (branches, tags, remotes, HEAD), each once,
    /// attributed to the oldest commit (by commit time) that contains it — the commit that
    /// introduced it, even when a later one deleted it. Trees already walked are not walked
    /// again, so the cost follows the number of distinct trees, not commits times files.
    pub fn blobs(&self) -> Result<Blobs> {
        let mut buf = Vec::new();
        let mut tips = Vec::new();
        let refs = self.repo.references().map_err(|e| GitError::Refs(e.to_string()))?;
        for r in refs.all().map_err(|e| GitError::Refs(e.to_string()))? {
            let r = r.map_err(|e| GitError::Refs(e.to_string()))?;
            if let Some(id) = r.target().try_id().map(ToOwned::to_owned)
                && let Some((commit, _)) = self.peel(id, &mut buf)?
            {
                tips.push(commit);
            }
        }
        if let Ok(head) = self.repo.head_id() {
            tips.push(head.detach());
        }
        // Every reachable commit, with what a report needs of it.
        let mut seen = std::collections::HashSet::new();
        let mut stack = tips;
        let mut found: Vec<(i64, ObjectId, ObjectId, CommitInfo)> = Vec::new();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            let Some(data) = self.raw(&id, &mut buf)? else {
                if self.shallow {
                    continue;
                }
                return Err(GitError::Missing { id: id.to_string() });
            };
            let bad = || GitError::Object { id: id.to_string(), reason: "not a well-formed commit".into() };
            let tree = data
                .data
                .split(|b| *b == b'\n')
                .next()
                .and_then(|l| l.strip_prefix(b"tree "))
                .and_then(|t| ObjectId::from_hex(t).ok())
                .ok_or_else(bad)?;
            let raw = parse_commit(data.data).ok_or_else(bad)?;
            let (author, email, time) = identity(raw.author);
            let commit_time = signature(raw.committer).1;
            let summary =
                String::from_utf8_lossy(raw.message.split(|b| *b == b'\n').next().unwrap_or_default()).into_owned();
            stack.extend(raw.parents.iter().copied());
            found.push((commit_time, id, tree, CommitInfo { id, author, email, time, summary }));
        }
        found.sort_by_key(|(t, id, ..)| (*t, *id));
        let mut out = Blobs::default();
        let mut trees_seen = std::collections::HashSet::new();
        let mut blobs_seen = std::collections::HashSet::new();
        for (_, _, tree, info) in found {
            let index = out.commits.len() as u32;
            out.commits.push(info);
            let mut pending = vec![(tree, String::new())];
            while let Some((tree, prefix)) = pending.pop() {
                if !trees_seen.insert(tree) {
                    continue;
                }
                let Some(data) = self.raw(&tree, &mut buf)? else {
                    if self.shallow {
                        continue;
                    }
                    return Err(GitError::Missing { id: tree.to_string() });
                };
                // Entries: `<mode> <name>\0<20-byte id>`.
                let mut entries = data.data;
                while !entries.is_empty() {
                    let (Some(sp), Some(nul)) =
                        (entries.iter().position(|b| *b == b' '), entries.iter().position(|b| *b == 0))
                    else {
                        break;
                    };
                    let Some(hash) = entries.get(nul + 1..nul + 21) else { break };
                    let (mode, name) = (&entries[..sp], String::from_utf8_lossy(&entries[sp + 1..nul]));
                    let id = ObjectId::from_bytes_or_panic(hash);
                    let path = if prefix.is_empty() { name.into_owned() } else { format!("{prefix}/{name}") };
                    match mode {
                        b"40000" => pending.push((id, path)),
                        b"100644" | b"100755" | b"100664" if blobs_seen.insert(id) => {
                            out.blobs.push(BlobVersion { blob: id, path, commit: index });
                        }
                        // Symbolic links and submodules hold no file content of this repository.
                        _ => {}
                    }
                    entries = &entries[nul + 21..];
                }
            }
        }
        Ok(out)
    }

    /// A blob's content.
    pub fn blob<'b>(&self, id: &ObjectId, buf: &'b mut Vec<u8>) -> Result<&'b [u8]> {
        match self.raw(id, buf)? {
            Some(d) => Ok(d.data),
            None => Err(GitError::Missing { id: id.to_string() }),
        }
    }
}

/// Commits reachable from a set of release tips, each assigned to the first release (in the
/// order given, which callers make chronological) that reaches it.
#[derive(Debug, Default)]
pub struct History {
    pub commits: Vec<Commit>,
    /// For each commit, the index of the release that first shipped it.
    pub shipped_by: Vec<u32>,
    /// Commits at the boundary of a shallow clone (their parents are absent).
    pub shallow_boundary: usize,
}

/// Walks history from each tip in turn, assigning every commit not yet seen to that tip:
/// "the commits a release shipped are those reachable from it and from no earlier release".
/// Merges are followed through all parents; each commit is read once. `keep_summary`
/// decides which commits keep their first message line.
pub fn assign(repo: &Repo, tips: &[ObjectId], keep_summary: impl Fn(&str) -> bool) -> Result<History> {
    let mut index: HashMap<ObjectId, u32> = HashMap::new();
    let mut h = History::default();
    let mut buf = Vec::new();
    let mut stack: Vec<ObjectId> = Vec::new();
    // First parents are linked after the walk, as some are read after their children.
    let mut first_parents: Vec<Option<ObjectId>> = Vec::new();
    for (release, tip) in tips.iter().enumerate() {
        stack.push(*tip);
        while let Some(id) = stack.pop() {
            if index.contains_key(&id) {
                continue;
            }
            let Some(data) = repo.raw(&id, &mut buf)? else {
                if repo.shallow {
                    h.shallow_boundary += 1;
                    continue;
                }
                return Err(GitError::Missing { id: id.to_string() });
            };
            let raw = parse_commit(data.data)
                .ok_or_else(|| GitError::Object { id: id.to_string(), reason: "not a well-formed commit".into() })?;
            let summary_end = raw.message.iter().position(|b| *b == b'\n').unwrap_or(raw.message.len());
            let summary = String::from_utf8_lossy(&raw.message[..summary_end]);
            let commit = Commit {
                id,
                first_parent: None,
                author_time: signature(raw.author).1,
                commit_time: signature(raw.committer).1,
                summary: keep_summary(&summary).then(|| summary.into()),
                reverts: reverted(raw.message),
            };
            stack.extend(raw.parents.iter().copied());
            index.insert(id, h.commits.len() as u32);
            first_parents.push(raw.parents.first().copied());
            h.commits.push(commit);
            h.shipped_by.push(release as u32);
        }
    }
    for (commit, parent) in h.commits.iter_mut().zip(first_parents) {
        commit.first_parent = parent.and_then(|p| index.get(&p).copied());
    }
    Ok(h)
}

/// The commits a deployment of `tip` ships when `previous` was running: those reachable from
/// `tip` and not from `previous`. With no previous deployment, or one whose commit is no
/// longer in the repository (a force-pushed history), only `tip` itself is attributed, and
/// the second value says why.
pub fn shipped(repo: &Repo, tip: ObjectId, previous: Option<ObjectId>) -> Result<(Vec<Commit>, Option<String>)> {
    let all = |_: &str| true;
    let mut buf = Vec::new();
    let present = |id: &ObjectId, buf: &mut Vec<u8>| repo.raw(id, buf).map(|d| d.is_some());
    if !present(&tip, &mut buf)? {
        return Err(GitError::Missing { id: tip.to_string() });
    }
    let only_tip = |why: String| -> Result<(Vec<Commit>, Option<String>)> {
        let h = assign(repo, &[tip], all)?;
        Ok((h.commits.into_iter().filter(|c| c.id == tip).collect(), Some(why)))
    };
    match previous {
        None => only_tip("no previous deployment: only the deployed commit is attributed".into()),
        Some(p) if !present(&p, &mut buf)? => only_tip(format!(
            "previous commit {p} is not in the repository (force-pushed away?): only the deployed commit is attributed"
        )),
        Some(p) => {
            let h = assign(repo, &[p, tip], all)?;
            let commits = h.commits.into_iter().zip(h.shipped_by).filter(|(_, r)| *r == 1).map(|(c, _)| c).collect();
            Ok((commits, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commit_headers() {
        let raw = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nparent 0000000000000000000000000000000000000001\nparent 0000000000000000000000000000000000000002\nauthor Ana Lima <ana@example.com> 1700000000 +0100\ncommitter Bo <bo@example.com> 1700000100 +0000\n\nRevert \"add x\"\n\nThis reverts commit 1234567890abcdef1234567890abcdef12345678.\n";
        let c = parse_commit(raw).expect("commit");
        assert_eq!(c.parents.len(), 2);
        assert_eq!(signature(c.author), ("Ana Lima".to_owned(), 1_700_000_000));
        assert_eq!(signature(c.committer).1, 1_700_000_100);
        assert_eq!(reverted(c.message).map(|o| o.to_string()), Some("1234567890abcdef1234567890abcdef12345678".into()));
    }
}
