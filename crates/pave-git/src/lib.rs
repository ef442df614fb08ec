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
    /// The first line of the message, kept when the caller's filter asks for it and for
    /// every revert (a report names the revert by it).
    pub summary: Option<Box<str>>,
    /// The commit a `git revert` commit reverts (`This reverts commit <sha>.`); an
    /// abbreviated id is resolved against the history walked, when exactly one commit of it
    /// has that prefix.
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

/// What a revert's message names: `git revert` writes the full id, `git revert --reference`
/// an abbreviation (`This reverts commit a33fea08 (subject, date).`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reverted {
    Full(ObjectId),
    Abbreviated(gix::hash::Prefix),
}

/// The shortest abbreviation read as a commit id: git's own default minimum. Shorter hex
/// runs are too likely to be a word ("This reverts commit added ...") or to be ambiguous.
const MIN_ABBREVIATION: usize = 7;

fn reverted(message: &[u8]) -> Option<Reverted> {
    let text = String::from_utf8_lossy(message);
    let at = text.find("This reverts commit ")?;
    let hex: String =
        text[at + 20..].chars().take_while(char::is_ascii_hexdigit).collect::<String>().to_ascii_lowercase();
    match hex.len() {
        40 => ObjectId::from_hex(hex.as_bytes()).ok().map(Reverted::Full),
        n if (MIN_ABBREVIATION..40).contains(&n) => gix::hash::Prefix::from_hex(&hex).ok().map(Reverted::Abbreviated),
        _ => None,
    }
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

    /// Whether `commit`'s tree has a file or directory at `dir`.
    pub fn has_path(&self, commit: &ObjectId, dir: &[&[u8]]) -> Result<bool> {
        Ok(self.subtree(commit, dir, &mut Vec::new())?.is_some())
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

/// A commit read by [`Repo::blobs`], before ordering.
struct Found {
    commit_time: i64,
    tree: ObjectId,
    parents: Vec<ObjectId>,
    info: CommitInfo,
}

/// The order to read commits in so that every parent comes before its children: clocks
/// tie (several commits in one second) and run behind (a rebase keeps author times, a
/// machine's clock is wrong), so time alone would read a child first and credit it with
/// what its parent introduced. Among commits whose parents are all read, the oldest by
/// commit time (then id) comes first. Parents outside `found` (a shallow boundary) are
/// ignored.
fn parents_first(found: &[Found]) -> Vec<usize> {
    use std::cmp::Reverse;
    let at: HashMap<ObjectId, usize> = found.iter().enumerate().map(|(i, f)| (f.info.id, i)).collect();
    let mut waiting = vec![0usize; found.len()];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); found.len()];
    for (i, f) in found.iter().enumerate() {
        // A parent listed twice (possible in a hand-made commit) is one edge.
        let mut parents: Vec<usize> = f.parents.iter().filter_map(|p| at.get(p).copied()).collect();
        parents.sort_unstable();
        parents.dedup();
        waiting[i] = parents.len();
        for p in parents {
            children[p].push(i);
        }
    }
    let mut ready: std::collections::BinaryHeap<Reverse<(i64, ObjectId, usize)>> = found
        .iter()
        .enumerate()
        .filter(|(i, _)| waiting[*i] == 0)
        .map(|(i, f)| Reverse((f.commit_time, f.info.id, i)))
        .collect();
    let mut order = Vec::with_capacity(found.len());
    while let Some(Reverse((_, _, i))) = ready.pop() {
        order.push(i);
        for &c in &children[i] {
            waiting[c] -= 1;
            if waiting[c] == 0 {
                ready.push(Reverse((found[c].commit_time, found[c].info.id, c)));
            }
        }
    }
    order
}

impl Repo {
    /// Every blob reachable from any reference (branches, tags, remotes, HEAD), each once,
    /// attributed to the first commit that contains it in an order where parents come
    /// before children (commit time breaks ties, see [`parents_first`]) — the commit that
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
        let mut found: Vec<Found> = Vec::new();
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
            found.push(Found {
                commit_time,
                tree,
                parents: raw.parents,
                info: CommitInfo { id, author, email, time, summary },
            });
        }
        let mut out = Blobs::default();
        let mut trees_seen = std::collections::HashSet::new();
        let mut blobs_seen = std::collections::HashSet::new();
        let order = parents_first(&found);
        let mut found: Vec<Option<Found>> = found.into_iter().map(Some).collect();
        for i in order {
            let Some(Found { tree, info, .. }) = found[i].take() else { continue };
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
    /// Reverts whose abbreviated id matches several commits of the history, so which one
    /// they revert is unknown: `(the revert, the abbreviation)`. They are left unresolved.
    pub ambiguous_reverts: Vec<(ObjectId, String)>,
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
    // First parents are linked after the walk, as some are read after their children; so
    // are abbreviated revert ids, which need every commit to be known first.
    let mut first_parents: Vec<Option<ObjectId>> = Vec::new();
    let mut abbreviated: Vec<(usize, gix::hash::Prefix)> = Vec::new();
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
            let reverts = reverted(raw.message);
            let commit = Commit {
                id,
                first_parent: None,
                author_time: signature(raw.author).1,
                commit_time: signature(raw.committer).1,
                summary: (reverts.is_some() || keep_summary(&summary)).then(|| summary.into()),
                reverts: match reverts {
                    Some(Reverted::Full(target)) => Some(target),
                    Some(Reverted::Abbreviated(prefix)) => {
                        abbreviated.push((h.commits.len(), prefix));
                        None
                    }
                    None => None,
                },
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
    if !abbreviated.is_empty() {
        let mut sorted: Vec<ObjectId> = h.commits.iter().map(|c| c.id).collect();
        sorted.sort_unstable();
        for (at, prefix) in abbreviated {
            match unique_match(&sorted, &prefix) {
                Ok(Some(target)) => h.commits[at].reverts = Some(target),
                Ok(None) => {}
                Err(()) => h.ambiguous_reverts.push((h.commits[at].id, prefix.to_string())),
            }
        }
    }
    Ok(h)
}

/// The one id in `sorted` that starts with `prefix`: `Ok(None)` when none does, `Err` when
/// several do (an ambiguous abbreviation names no commit).
fn unique_match(sorted: &[ObjectId], prefix: &gix::hash::Prefix) -> Result<Option<ObjectId>, ()> {
    let start = sorted.partition_point(|id| prefix.cmp_oid(id) == std::cmp::Ordering::Greater);
    let mut matching = sorted[start..].iter().take_while(|id| prefix.cmp_oid(id).is_eq());
    match (matching.next(), matching.next()) {
        (Some(id), None) => Ok(Some(*id)),
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err(()),
    }
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
        let full = ObjectId::from_hex(b"1234567890abcdef1234567890abcdef12345678").expect("hex");
        assert_eq!(reverted(c.message), Some(Reverted::Full(full)));
    }

    #[test]
    fn reads_abbreviated_revert_ids() {
        let abbrev = |m: &str| match reverted(m.as_bytes()) {
            Some(Reverted::Abbreviated(p)) => Some(p.to_string()),
            _ => None,
        };
        // `git revert --reference`.
        assert_eq!(
            abbrev("fix it\n\nThis reverts commit A33fea08 (feat: x, 2024-01-02).\n").as_deref(),
            Some("a33fea08")
        );
        // Shorter than git's minimum abbreviation: a word, not an id.
        assert_eq!(reverted(b"This reverts commit added in 2019."), None);
        assert_eq!(reverted(b"This reverts commit abc123 (x)."), None);
    }

    use pave_testkit::git_at as git;

    fn add(dir: &Path, at: i64, file: &str, text: &str) {
        std::fs::write(dir.join(file), text).expect("write");
        git(dir, at, &["add", "-A"]);
        git(dir, at, &["commit", "-q", "-m", &format!("add {file}")]);
    }

    /// Which commit (by summary) each path's first version is credited to.
    fn credited(dir: &Path) -> Vec<(String, String)> {
        let b = Repo::open(dir).expect("repo").blobs().expect("blobs");
        let mut out: Vec<(String, String)> =
            b.blobs.iter().map(|v| (v.path.clone(), b.commits[v.commit as usize].summary.clone())).collect();
        out.sort();
        out
    }

    #[test]
    fn blobs_are_credited_to_the_commit_that_introduced_them_when_clocks_tie_or_run_behind() {
        // Eight commits in the same second: time cannot order them, their parents can.
        let dir = tempfile::tempdir().expect("tempdir");
        git(dir.path(), 1_700_000_000, &["init", "-q", "-b", "main"]);
        for i in 0..8 {
            add(dir.path(), 1_700_000_000, &format!("f{i}.txt"), &format!("{i}\n"));
        }
        let want: Vec<(String, String)> = (0..8).map(|i| (format!("f{i}.txt"), format!("add f{i}.txt"))).collect();
        assert_eq!(credited(dir.path()), want);

        // A child whose clock ran an hour behind its parent's.
        let dir = tempfile::tempdir().expect("tempdir");
        git(dir.path(), 1_700_000_000, &["init", "-q", "-b", "main"]);
        add(dir.path(), 1_700_000_000, "a.txt", "a\n");
        add(dir.path(), 1_700_003_600, "key.txt", "secret\n");
        add(dir.path(), 1_700_000_100, "b.txt", "b\n");
        assert_eq!(
            credited(dir.path()),
            [
                ("a.txt".to_owned(), "add a.txt".to_owned()),
                ("b.txt".to_owned(), "add b.txt".to_owned()),
                ("key.txt".to_owned(), "add key.txt".to_owned())
            ]
        );
    }

    #[test]
    fn reverts_by_reference_are_resolved_against_the_history() {
        let dir = tempfile::tempdir().expect("tempdir");
        git(dir.path(), 1_700_000_000, &["init", "-q", "-b", "main"]);
        add(dir.path(), 1_700_000_000, "a.txt", "a\n");
        add(dir.path(), 1_700_000_100, "b.txt", "b\n");
        let target = git(dir.path(), 1_700_000_100, &["rev-parse", "HEAD"]);
        // `--reference` writes `This reverts commit <abbreviated> (subject, date).`
        git(dir.path(), 1_700_000_200, &["revert", "--reference", "--no-edit", "HEAD"]);
        let repo = Repo::open(dir.path()).expect("repo");
        let tip = repo.resolve("main").expect("main");
        let h = assign(&repo, &[tip], |_| false).expect("history");
        let revert = h.commits.iter().find(|c| c.id == tip).expect("the revert");
        assert_eq!(revert.reverts.map(|r| r.to_string()), Some(target));
        assert!(revert.summary.is_some(), "a revert keeps its summary for the report");
        assert!(h.ambiguous_reverts.is_empty());
    }

    #[test]
    fn abbreviations_resolve_only_when_unambiguous() {
        let id = |h: &str| ObjectId::from_hex(format!("{h:0<40}").as_bytes()).expect("hex");
        let mut sorted = vec![id("a33fea08"), id("a33fea0f"), id("b0"), id("a33fe1")];
        sorted.sort_unstable();
        let p = |h: &str| gix::hash::Prefix::from_hex(h).expect("prefix");
        assert_eq!(unique_match(&sorted, &p("a33fea08")), Ok(Some(id("a33fea08"))));
        assert_eq!(unique_match(&sorted, &p("a33fea0")), Err(()), "two commits start with a33fea0");
        assert_eq!(unique_match(&sorted, &p("c0ffee0")), Ok(None));
        assert_eq!(unique_match(&sorted, &p("a33fe10")), Ok(Some(id("a33fe1"))));
    }
}
