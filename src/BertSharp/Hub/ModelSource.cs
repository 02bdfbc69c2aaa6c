using System.Text.Json;
using BertSharp.Checkpoints;
using BertSharp.Data;

namespace BertSharp.Hub;

/// <summary>
/// The one place a model argument becomes a local folder: a folder stays itself; a Hub id (<c>name</c>,
/// <c>org/name</c>, <c>org/name@revision</c>) becomes its snapshot folder in the hub cache, fetched first where
/// needed, into the layout Python's huggingface_hub uses (so a model either of them downloaded serves both):
/// <code>
/// string folder = ModelSource.Resolve("sentence-transformers/all-MiniLM-L6-v2");
/// using var model = FineTunedModel.Load("org/my-classifier@v1.0");   // the loaders call Resolve themselves
/// </code>
/// Only what a BERT folder needs is fetched (<see cref="ModelFiles"/>). Each file is downloaded to
/// <c>blobs/{etag}.incomplete</c> (resumed with a Range request when one is there), checked against its ETag,
/// renamed into place, and only then linked from the snapshot; refs/ is written last. A model already in the
/// cache costs one HEAD request online and none offline (<see cref="HubOptions.Offline"/>) or when pinned to a commit.
/// </summary>
public static class ModelSource
{
    /// <summary>The local folder for <paramref name="folderOrId"/>: the folder itself, or the snapshot folder of a
    /// Hub model, fetched as needed with <paramref name="options"/> (default: <see cref="HubOptions.FromEnvironment()"/>).</summary>
    /// <exception cref="BertSharpException">A one-line error naming the model and what to do.</exception>
    public static string Resolve(string folderOrId, HubOptions? options = null, IProgress<DownloadProgress>? progress = null) =>
        ResolveAsync(folderOrId, options, progress).GetAwaiter().GetResult();

    /// <inheritdoc cref="Resolve"/>
    public static async Task<string> ResolveAsync(string folderOrId, HubOptions? options = null, IProgress<DownloadProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var reference = ModelReference.Parse(folderOrId);
        if (!reference.IsHubId) return reference.Folder!;
        return (await FetchAsync(reference, options ?? HubOptions.FromEnvironment(), progress, cancellationToken).ConfigureAwait(false)).Folder;
    }

    /// <summary>Fetches (or finds in the cache) a Hub model's files; returns the snapshot: its folder and commit.</summary>
    public static async Task<HubSnapshot> FetchAsync(ModelReference reference, HubOptions options, IProgress<DownloadProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        if (!reference.IsHubId) throw new ArgumentException("not a Hub id: " + reference, nameof(reference));
        var fetch = new Fetch(reference, options, progress, cancellationToken);
        return await fetch.RunAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// The files of a BERT model folder, in the order they are fetched: config.json (required), the tokenizer's
    /// files, model.safetensors else pytorch_model.bin (one of them required), and the sentence-transformers files:
    /// modules.json and, for each module it lists in a sub-folder, that folder's config.json (and a Dense module's
    /// weights). Files other than the required ones may be missing.
    /// </summary>
    public static class ModelFiles
    {
        public static readonly string[] Tokenizer = ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json"];
        public static readonly string[] SentenceTransformers = ["modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"];
        public static readonly string[] Weights = [ModelFolder.SafeTensorsFileName, ModelFolder.PyTorchFileName];
    }

    /// <summary>One fetch of one model: the plan of files, walked against the cache and, unless offline, the Hub.</summary>
    sealed class Fetch(ModelReference reference, HubOptions options, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        readonly RepoCache cache = new(options.CacheDir, reference.RepoId!);
        readonly HubHttp http = new(options);
        string Id => reference.ToString();
        string Endpoint => options.Endpoint;

        public async Task<HubSnapshot> RunAsync()
        {
            if (options.Offline)
            {
                string? cached = cache.CommitOf(reference.Revision);
                if (cached is null || !Walk(cached, strict: false, out _))
                    throw new BertSharpException($"HF_HUB_OFFLINE is set and {Id} is not in the cache {options.CacheDir}"
                        + (cached is null ? "" : $" (snapshot {cached} lacks {ModelFolder.ConfigFile} or the weights)")
                        + ": run once online or unset HF_HUB_OFFLINE");
                return new HubSnapshot(reference, cached, cache.SnapshotDir(cached));
            }
            // Pinned to a commit whose snapshot is complete: nothing to ask (as huggingface_hub's shortcut).
            if (ModelReference.IsCommitHash(reference.Revision) && Walk(reference.Revision, strict: true, out _))
                return new HubSnapshot(reference, reference.Revision, cache.SnapshotDir(reference.Revision));

            try
            {
                string commit = reference.Revision;
                var known = new Dictionary<string, HubFileMetadata>();
                if (!ModelReference.IsCommitHash(commit))
                {
                    var config = await HeadAsync(commit, ModelFolder.ConfigFile).ConfigureAwait(false);
                    commit = config.Commit;
                    known[ModelFolder.ConfigFile] = config;
                }
                await WalkOnlineAsync(commit, known).ConfigureAwait(false);
                cache.WriteRef(reference.Revision, commit);
                return new HubSnapshot(reference, commit, cache.SnapshotDir(commit));
            }
            catch (HubRequestException e) when (e.Kind is not (HubFailure.RevisionNotFound or HubFailure.EntryNotFound or HubFailure.Interrupted)
                && cache.CommitOf(reference.Revision) is { } cached && Walk(cached, strict: false, out _))
            {
                // As huggingface_hub: the Hub unreachable, or refusing (private, gated, down): a cached snapshot still serves.
                options.Log?.Invoke($"{Id}: {Endpoint} {(e.Kind == HubFailure.Network ? "cannot be reached" : "refused")} ({e.Message}); using the cached snapshot {cached}");
                return new HubSnapshot(reference, cached, cache.SnapshotDir(cached));
            }
            catch (HubRequestException e)
            {
                throw Explain(e, e.Data["file"] as string ?? ModelFolder.ConfigFile);
            }
        }

        /// <summary>HEAD of one file at <paramref name="revision"/>; a failure carries the file's name.</summary>
        async Task<HubFileMetadata> HeadAsync(string revision, string file)
        {
            try { return await http.HeadAsync(reference.RepoId!, revision, file, cancellationToken).ConfigureAwait(false); }
            catch (HubRequestException e)
            {
                e.Data["file"] = file;
                throw;
            }
        }

        /// <summary>Walks the plan against the cache alone. <paramref name="strict"/>: every file must be there or known
        /// missing (.no_exist); else only config.json and a weights file must be there. False when that fails.</summary>
        bool Walk(string commit, bool strict, out string? lacking)
        {
            string? missing = null;
            bool Have(string file, bool required)
            {
                if (missing != null) return false;
                if (RepoCache.Exists(cache.PointerPath(commit, file))) return true;
                if (strict && !cache.KnownMissing(commit, file) || required) missing = file;
                return false;
            }
            Plan(commit, Have);
            lacking = missing;
            return missing is null;
        }

        async Task WalkOnlineAsync(string commit, Dictionary<string, HubFileMetadata> known)
        {
            // The plan runs synchronously over a cache check per file; what it lacks is fetched and the plan re-run,
            // so modules.json, once fetched, can add its modules' files.
            var absent = new HashSet<string>(StringComparer.Ordinal);
            while (true)
            {
                string? next = null;
                Plan(commit, (file, required) =>
                {
                    if (next != null) return false;
                    if (RepoCache.Exists(cache.PointerPath(commit, file))) return true;
                    if (absent.Contains(file) || cache.KnownMissing(commit, file))
                    {
                        if (required) throw Missing(file);
                        return false;
                    }
                    next = file;
                    return false;
                });
                if (next is null) return;
                if (!await FetchFileAsync(commit, next, known).ConfigureAwait(false)) absent.Add(next);
            }
        }

        /// <summary>
        /// The files a BERT folder needs, asked of <paramref name="have"/> (file, required → whether it is there) in
        /// order; a weights file is required only when neither is there. Stops being useful once <paramref name="have"/>
        /// returns false for a file whose absence changes the rest (the callers stop at the first unknown file).
        /// </summary>
        void Plan(string commit, Func<string, bool, bool> have)
        {
            have(ModelFolder.ConfigFile, true);
            foreach (var f in ModelFiles.Tokenizer) have(f, false);
            if (!have(ModelFolder.SafeTensorsFileName, false)) have(ModelFolder.PyTorchFileName, true);
            if (have("modules.json", false))
                foreach (var (path, dense) in Modules(cache.PointerPath(commit, "modules.json")))
                {
                    have(path + "/config.json", false);
                    if (dense && !have(path + "/" + ModelFolder.SafeTensorsFileName, false)) have(path + "/" + ModelFolder.PyTorchFileName, false);
                }
            foreach (var f in ModelFiles.SentenceTransformers.Skip(1)) have(f, false);
        }

        /// <summary>The sub-folders modules.json names that hold files (a module at the root, path "", brings no folder;
        /// a Normalize module's folder is empty), and whether each is a Dense module (which has weights of its own).</summary>
        IEnumerable<(string Path, bool Dense)> Modules(string modulesJson)
        {
            JsonElement root;
            try { root = JsonDocument.Parse(File.ReadAllText(modulesJson)).RootElement; }
            catch (JsonException e) { throw new BertSharpException($"{Id}: modules.json is not valid JSON ({TextLineReader.OneLine(e.Message)})"); }
            if (root.ValueKind != JsonValueKind.Array) throw new BertSharpException($"{Id}: modules.json is not a list of modules");
            var result = new List<(string, bool)>();
            foreach (var module in root.EnumerateArray())
            {
                if (module.ValueKind != JsonValueKind.Object || !module.TryGetProperty("path", out var p) || p.ValueKind != JsonValueKind.String) continue;
                string path = p.GetString()!.Trim('/');
                if (path.Length == 0) continue;
                if (path.Contains('\\') || path.Split('/').Any(s => s is "" or "." or ".."))
                    throw new BertSharpException($"{Id}: modules.json names the path '{path}', which is not a folder inside the model");
                string type = module.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "";
                if (type.EndsWith(".Normalize", StringComparison.Ordinal)) continue;
                result.Add((path, type.EndsWith(".Dense", StringComparison.Ordinal)));
            }
            return result;
        }

        /// <summary>Fetches one file at <paramref name="commit"/> into the cache; false when the Hub says it does not
        /// exist (recorded in .no_exist, as huggingface_hub records it).</summary>
        async Task<bool> FetchFileAsync(string commit, string file, Dictionary<string, HubFileMetadata> known)
        {
            HubFileMetadata meta;
            try
            {
                meta = known.TryGetValue(file, out var m) ? m : await HeadAsync(commit, file).ConfigureAwait(false);
            }
            catch (HubRequestException e) when (e.Kind == HubFailure.EntryNotFound)
            {
                cache.MarkMissing(e.Commit ?? commit, file);
                return false;
            }
            string blob = cache.BlobPath(meta.Etag);
            string pointer = cache.PointerPath(commit, file);
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
                cache.TagCacheDir();
                using (await cache.LockAsync(meta.Etag, options.Log, cancellationToken).ConfigureAwait(false))
                {
                    if (!RepoCache.Exists(blob))
                    {
                        string part = blob + ".incomplete";
                        await http.DownloadAsync(meta, part, http.ResolveUrl(reference.RepoId!, commit, file), progress, cancellationToken).ConfigureAwait(false);
                        File.Move(part, blob, overwrite: true);
                        AtomicFile.FlushFolderToDisk(Path.GetDirectoryName(blob)!);
                    }
                    cache.Link(blob, pointer);
                }
            }
            catch (HubRequestException e)
            {
                e.Data["file"] = file;
                throw;
            }
            catch (ChecksumMismatchException e)
            {
                throw new BertSharpException($"{Id}/{file}: the download does not match its checksum ({e.Message}); the file was deleted: run again to retry");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw WriteFailure(e, file, meta.Size);
            }
            return true;
        }

        BertSharpException Missing(string file) => file == ModelFolder.ConfigFile
            ? new BertSharpException($"{Id}: has no {ModelFolder.ConfigFile} on {Endpoint} (revision '{reference.Revision}'): not a model folder")
            : new BertSharpException($"{Id}: has neither {ModelFolder.SafeTensorsFileName} nor {ModelFolder.PyTorchFileName} on {Endpoint} (revision '{reference.Revision}'); BertSharp needs one of them");

        /// <summary>A failed request as a one-line error naming the model and what to do.</summary>
        BertSharpException Explain(HubRequestException e, string file)
        {
            string inCache = $"the cache {options.CacheDir}";
            string message = e.Kind switch
            {
                HubFailure.RepoNotFound => options.Token is null
                    ? $"{Id}: no such model on {Endpoint} (and no local folder of that name); check the id, or set HF_TOKEN if it is private"
                    : $"{Id}: no such model on {Endpoint}, or the token in HF_TOKEN has no access to it; check the id",
                HubFailure.RevisionNotFound => $"{reference.RepoId}: revision '{reference.Revision}' not found on {Endpoint}; give an existing branch, tag or commit",
                HubFailure.EntryNotFound => Missing(file).Message,
                HubFailure.Gated or HubFailure.Unauthorized => options.Token is null
                    ? $"{Id}: gated or private on {Endpoint} ({e.Message}): set HF_TOKEN to a token with access"
                    : $"{Id}: gated or private on {Endpoint}, and the token in HF_TOKEN has no access ({e.Message}): request access at {Endpoint}/{reference.RepoId} or set HF_TOKEN to another token",
                HubFailure.InvalidToken => $"{Id}: {Endpoint} does not accept the token in HF_TOKEN ({e.Message}): set a valid one, or unset HF_TOKEN for public models",
                HubFailure.Network => $"{Id}: cannot reach {Endpoint} ({e.Message}) and the model is not in {inCache}: check the network (or HF_ENDPOINT); models already in the cache also work offline (HF_HUB_OFFLINE=1)",
                HubFailure.Interrupted => $"{Id}/{file}: the download kept breaking off ({e.Message}); run again to resume it",
                HubFailure.Server => $"{Id}/{file}: {Endpoint} answered {e.Message} and the model is not in {inCache}: try again later",
                _ => $"{Id}/{file}: {Endpoint}: {e.Message}; check HF_ENDPOINT",
            };
            return new BertSharpException(message, e);
        }

        /// <summary>A file-system failure while writing the cache: a full disk says where and how much; the rest name the cache.</summary>
        BertSharpException WriteFailure(Exception e, string file, long size)
        {
            if (IsDiskFull(e))
                return new BertSharpException($"{options.CacheDir}: disk full while downloading {Id}/{file} ({size:N0} bytes); free space there or set HF_HUB_CACHE to a folder on another disk (the partial download resumes)", e);
            return new BertSharpException($"{options.CacheDir}: could not write {Id}/{file} ({TextLineReader.OneLine(e.Message)}); check the cache folder's permissions or set HF_HUB_CACHE", e);
        }
    }

    /// <summary>ENOSPC on Linux and macOS (.NET puts the errno in HResult); ERROR_DISK_FULL / ERROR_HANDLE_DISK_FULL on Windows.</summary>
    internal static bool IsDiskFull(Exception e) =>
        e is IOException && (e.HResult is 28 or unchecked((int)0x80070070) or unchecked((int)0x80070027));
}

/// <summary>A Hub model in the cache: what was asked for, the commit it resolved to, and the snapshot folder.</summary>
public sealed record HubSnapshot(ModelReference Reference, string Commit, string Folder);
