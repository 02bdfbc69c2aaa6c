namespace BertSharp.Hub;

/// <summary>
/// One model's folder in the hub cache, laid out as Python's huggingface_hub lays it out, so that each finds
/// what the other downloaded:
/// <code>
/// {cache}/models--org--name/
///   blobs/{etag}                      the files' bytes, named by their ETag (the sha256 for LFS files, the git blob sha1 otherwise)
///   refs/{revision}                   the commit hash a branch or tag pointed at (no newline)
///   snapshots/{commit}/{file}         a relative symlink to ../../blobs/{etag} (a copy where symlinks fail)
///   .no_exist/{commit}/{file}         an empty file: the file is known not to exist at that commit
/// {cache}/.locks/models--org--name/{etag}.lock   held while a blob is downloaded
/// </code>
/// </summary>
internal sealed class RepoCache
{
    public string CacheDir { get; }
    public string RepoId { get; }
    /// <summary><c>{cache}/models--org--name</c>.</summary>
    public string Root { get; }

    public RepoCache(string cacheDir, string repoId)
    {
        CacheDir = cacheDir;
        RepoId = repoId;
        Root = Path.Combine(cacheDir, FolderName(repoId));
    }

    /// <summary>huggingface_hub's repo_folder_name for a model: <c>models--org--name</c>.</summary>
    public static string FolderName(string repoId) => "models--" + repoId.Replace("/", "--");

    public string SnapshotDir(string commit) => Path.Combine(Root, "snapshots", commit);

    public string PointerPath(string commit, string file) => Path.Combine(SnapshotDir(commit), Local(file));

    public string BlobPath(string etag) => Path.Combine(Root, "blobs", etag);

    public string NoExistPath(string commit, string file) => Path.Combine(Root, ".no_exist", commit, Local(file));

    public string LockPath(string etag) => Path.Combine(CacheDir, ".locks", FolderName(RepoId), etag + ".lock");

    string RefPath(string revision) => Path.Combine(Root, "refs", Local(revision));

    /// <summary>A repository path ("1_Pooling/config.json") as a path under a folder of this system.</summary>
    static string Local(string repoPath) => Path.Combine(repoPath.Split('/'));

    /// <summary>The commit a revision names: itself when it is a full commit hash, else what refs/ recorded (null when nothing).</summary>
    public string? CommitOf(string revision)
    {
        if (ModelReference.IsCommitHash(revision)) return revision;
        try
        {
            string path = RefPath(revision);
            return File.Exists(path) && File.ReadAllText(path).Trim() is { Length: > 0 } commit ? commit : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>Records the commit a branch or tag points at (atomically, and only when it changed, as huggingface_hub
    /// does, so a read-only cache that is already right is left alone).</summary>
    public void WriteRef(string revision, string commit)
    {
        if (revision == commit) return;
        if (CommitOf(revision) == commit) return;
        string path = RefPath(revision);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        AtomicFile.WriteAllText(path, commit);
    }

    /// <summary>Whether a snapshot file is there and readable through its link (a link to a missing blob is not,
    /// as for Python's os.path.exists).</summary>
    public static bool Exists(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) return false;
        if (info.LinkTarget is null) return true;
        try { return info.ResolveLinkTarget(returnFinalTarget: true) is { Exists: true } target && target is FileInfo; }
        catch (IOException) { return false; }
    }

    public bool KnownMissing(string commit, string file) => File.Exists(NoExistPath(commit, file));

    /// <summary>Records that <paramref name="file"/> does not exist at <paramref name="commit"/> (best effort, as in
    /// huggingface_hub: a read-only cache only loses the shortcut).</summary>
    public void MarkMissing(string commit, string file)
    {
        string path = NoExistPath(commit, file);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            if (!File.Exists(path)) File.WriteAllBytes(path, []);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>
    /// Makes <c>snapshots/{commit}/{file}</c> point at a complete blob: a relative symlink, created under a temporary
    /// name and renamed into place so a reader sees no link or the whole one. Where the file system refuses symlinks
    /// the blob is copied instead (the same fallback as huggingface_hub).
    /// </summary>
    public void Link(string blob, string pointer)
    {
        string dir = Path.GetDirectoryName(pointer)!;
        Directory.CreateDirectory(dir);
        string temp = Path.Combine(dir, $".{Path.GetFileName(pointer)}.{Guid.NewGuid():N}.tmp");
        try
        {
            try
            {
                File.CreateSymbolicLink(temp, Path.GetRelativePath(dir, blob));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
            {
                File.Copy(blob, temp);
            }
            File.Move(temp, pointer, overwrite: true);
            AtomicFile.FlushFolderToDisk(dir);
        }
        finally
        {
            try { if (File.Exists(temp) || new FileInfo(temp).LinkTarget != null) File.Delete(temp); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }

    /// <summary>Marks the cache folder for backup tools (the Cache Directory Tagging standard, which huggingface_hub follows too).</summary>
    public void TagCacheDir()
    {
        string tag = Path.Combine(CacheDir, "CACHEDIR.TAG");
        if (File.Exists(tag)) return;
        try
        {
            File.WriteAllText(tag, "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag (Python's huggingface_hub cache, written by BertSharp).\n# For information about cache directory tags, see https://bford.info/cachedir/\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>The lock is another's: EWOULDBLOCK from flock (11 on Linux, 35 on macOS), a sharing violation on Windows.</summary>
    static bool IsLockHeld(IOException e) => e.HResult is 11 or 35 or unchecked((int)0x80070020);

    /// <summary>
    /// Takes the blob's lock file (an exclusive flock on Linux and macOS, the lock Python's filelock takes too), waiting
    /// while another process or thread holds it. The lock is released when the returned handle is disposed.
    /// </summary>
    public async Task<IDisposable> LockAsync(string etag, Action<string>? waiting, CancellationToken cancellationToken)
    {
        string path = LockPath(etag);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var started = DateTime.UtcNow;
        bool said = false;
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
            }
            catch (IOException e) when (IsLockHeld(e))
            {
                if (!said && DateTime.UtcNow - started > TimeSpan.FromSeconds(5))
                {
                    waiting?.Invoke($"waiting for {path}: another process is downloading the same file");
                    said = true;
                }
                await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
