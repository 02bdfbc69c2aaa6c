using BertSharp.Data;
using BertSharp.Hub;
using BertSharp.Inference;
using static BertSharp.Tests.Hub.HubFixtures;

namespace BertSharp.Tests.Hub;

/// <summary>Models by name against a local server that answers like the Hub (<see cref="FakeHub"/>): the cache
/// layout Python's huggingface_hub uses, offline use, resume, verification, errors. No internet.</summary>
public class ModelSourceTests
{
    static string NewCache() => Path.Combine(TestPaths.TempDir("hub"), "hub");

    static HubSnapshot Fetch(FakeHub hub, string cache, string id, string? token = null, bool offline = false,
        IProgress<DownloadProgress>? progress = null, Action<string>? log = null, HubOptions? options = null) =>
        ModelSource.FetchAsync(ModelReference.Parse(id), options ?? Options(hub, cache, token, offline, log), progress).GetAwaiter().GetResult();

    static BertSharpException Fails(Func<object> action) => Assert.Throws<BertSharpException>(action);

    [Fact]
    public void FirstFetchDownloadsThenOfflineFetchMakesNoRequest()
    {
        using var hub = new FakeHub();
        string commit = hub.AddRepo(Tiny, TinyFiles());
        string cache = NewCache();
        var progress = new ListProgress<DownloadProgress>();

        string folder = ModelSource.Resolve(Tiny, Options(hub, cache), progress);

        Assert.Equal(Path.Combine(cache, "models--bertsharp-test--tiny-bert", "snapshots", commit), folder);
        foreach (var f in new[] { "config.json", "vocab.txt", "tokenizer_config.json", "model.safetensors" })
            Assert.Equal(TinyFiles()[f], File.ReadAllBytes(Path.Combine(folder, f)));
        Assert.Contains(progress.Items, p => p.Completed && p.Url.EndsWith("/model.safetensors") && p.BytesReceived == TinyFiles()["model.safetensors"].Length);

        int before = hub.Requests.Count;
        string offline = ModelSource.Resolve(Tiny, Options(hub, cache, offline: true));
        Assert.Equal(folder, offline);
        Assert.Equal(before, hub.Requests.Count);

        // The folder loads as a model folder.
        using var fill = new FillMask(offline, new LoadOptions());
        Assert.Equal(1000, fill.Tokenizer.VocabSize);
    }

    [Fact]
    public void CacheIsLaidOutAsHuggingFaceHubLaysItOut()
    {
        using var hub = new FakeHub();
        var files = TinySentenceFiles();
        string commit = hub.AddRepo(TinySentence, files);
        string cache = NewCache();
        string folder = ModelSource.Resolve(TinySentence, Options(hub, cache));

        string repo = Path.Combine(cache, "models--bertsharp-test--tiny-sentence");
        Assert.Equal(commit, File.ReadAllText(Path.Combine(repo, "refs", "main")));   // no newline
        var fetched = new[] { "config.json", "vocab.txt", "tokenizer_config.json", "model.safetensors", "modules.json", "1_Pooling/config.json", "sentence_bert_config.json" };
        foreach (var f in fetched)
        {
            string etag = FakeHub.EtagOf(f, files[f]);
            string blob = Path.Combine(repo, "blobs", etag);
            Assert.Equal(files[f], File.ReadAllBytes(blob));
            var link = new FileInfo(Path.Combine(folder, f));
            string up = string.Concat(Enumerable.Repeat("../", f.Count(c => c == '/') + 2));
            Assert.Equal(up + "blobs/" + etag, link.LinkTarget);   // relative, as Python's _create_symlink makes it
            Assert.Equal(Path.Combine(folder, f), PythonTryToLoadFromCache(cache, TinySentence, f));
        }
        Assert.Equal(64, FakeHub.EtagOf("model.safetensors", files["model.safetensors"]).Length);   // LFS: sha256
        Assert.Equal(40, FakeHub.EtagOf("config.json", files["config.json"]).Length);              // git: blob sha1
        Assert.Equal(fetched.Length, Directory.GetFiles(Path.Combine(repo, "blobs")).Length);     // no .incomplete left
        foreach (var absent in new[] { "special_tokens_map.json", "config_sentence_transformers.json" })
            Assert.Equal("NO_EXIST", PythonTryToLoadFromCache(cache, TinySentence, absent));
        Assert.True(File.Exists(Path.Combine(cache, "CACHEDIR.TAG")));
        Assert.True(Directory.Exists(Path.Combine(cache, ".locks", "models--bertsharp-test--tiny-sentence")));
        Assert.False(Directory.Exists(Path.Combine(folder, "2_Normalize")));   // a Normalize module has no files: not asked for
        Assert.DoesNotContain(hub.Requests, r => r.Path.Contains("2_Normalize"));
    }

    [Fact]
    public void OnlyTheFilesABertFolderNeedsAreRequested()
    {
        using var hub = new FakeHub();
        hub.AddRepo(Tiny, TinyFiles());
        ModelSource.Resolve(Tiny, Options(hub, NewCache()));

        var requested = hub.Requests.Where(r => !r.ToCdn).Select(r => r.File).ToHashSet();
        foreach (var unwanted in new[] { "pytorch_model.bin", "onnx/model.onnx", "tf_model.h5", "README.md", ".gitattributes" })
            Assert.DoesNotContain(unwanted, requested);
        Assert.Equal(["config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "model.safetensors", "modules.json",
            "sentence_bert_config.json", "config_sentence_transformers.json"], hub.Requests.Where(r => r.Method == "HEAD").Select(r => r.File));
        // Git files come from the Hub's host; the LFS file from the CDN it redirects to, once.
        Assert.All(hub.Requests.Where(r => !r.ToCdn), r => Assert.StartsWith("127.0.0.1:", r.Host));
        var cdn = Assert.Single(hub.Requests, r => r.ToCdn);
        Assert.Equal(("GET", hub.CdnAuthority), (cdn.Method, cdn.Host));
    }

    [Fact]
    public void ACachedModelCostsOneHeadRequestOnline()
    {
        using var hub = new FakeHub();
        hub.AddRepo(Tiny, TinyFiles());
        string cache = NewCache();
        string first = ModelSource.Resolve(Tiny, Options(hub, cache));
        hub.ClearRequests();
        string second = ModelSource.Resolve(Tiny, Options(hub, cache));
        Assert.Equal(first, second);
        var only = Assert.Single(hub.Requests);
        Assert.Equal(("HEAD", "config.json"), (only.Method, only.File));
    }

    /// <summary>A cache as Python's huggingface_hub writes it, built by hand: blobs, relative links, refs/main, .no_exist.</summary>
    static string PythonCache(string cache, string repoId, string commit, IReadOnlyDictionary<string, byte[]> files, IEnumerable<string> knownMissing)
    {
        string repo = Path.Combine(cache, "models--" + repoId.Replace("/", "--"));
        foreach (var (name, bytes) in files)
        {
            string etag = FakeHub.EtagOf(name, bytes);
            Directory.CreateDirectory(Path.Combine(repo, "blobs"));
            File.WriteAllBytes(Path.Combine(repo, "blobs", etag), bytes);
            string pointer = Path.Combine(repo, "snapshots", commit, name);
            Directory.CreateDirectory(Path.GetDirectoryName(pointer)!);
            File.CreateSymbolicLink(pointer, Path.GetRelativePath(Path.GetDirectoryName(pointer)!, Path.Combine(repo, "blobs", etag)));
        }
        foreach (var name in knownMissing)
        {
            string marker = Path.Combine(repo, ".no_exist", commit, name);
            Directory.CreateDirectory(Path.GetDirectoryName(marker)!);
            File.WriteAllBytes(marker, []);
        }
        Directory.CreateDirectory(Path.Combine(repo, "refs"));
        File.WriteAllText(Path.Combine(repo, "refs", "main"), commit);
        return Path.Combine(repo, "snapshots", commit);
    }

    [Fact]
    public void AModelPythonCachedIsUsedWithoutDownloading()
    {
        using var hub = new FakeHub();
        var files = TinyFiles();
        string commit = hub.AddRepo(Tiny, files);
        string cache = NewCache();
        var cached = files.Where(f => f.Key is "config.json" or "vocab.txt" or "tokenizer_config.json" or "model.safetensors").ToDictionary();
        // Python (transformers) tried these and recorded them missing; the sentence-transformers files it never asked for.
        string snapshot = PythonCache(cache, Tiny, commit, cached, ["special_tokens_map.json"]);

        Assert.Equal(snapshot, ModelSource.Resolve(Tiny, Options(hub, cache, offline: true)));
        Assert.Empty(hub.Requests);

        Assert.Equal(snapshot, ModelSource.Resolve(Tiny, Options(hub, cache)));
        Assert.All(hub.Requests, r => Assert.Equal("HEAD", r.Method));
        Assert.Equal(["config.json", "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"], hub.Requests.Select(r => r.File));
        Assert.Equal("NO_EXIST", PythonTryToLoadFromCache(cache, Tiny, "modules.json"));   // now known missing, for Python too
    }

    [Fact]
    public void AnInterruptedDownloadResumesWithARangeRequestAndIsVerified()
    {
        using var hub = new FakeHub();
        var files = TinyFiles();
        hub.AddRepo(Tiny, files);
        var weights = files["model.safetensors"];
        hub.Cuts[FakeHub.FaultKey("model.safetensors", weights)] = new FakeHub.Cut(100_000, times: 1);
        string cache = NewCache();

        string folder = ModelSource.Resolve(Tiny, Options(hub, cache));

        Assert.Equal(weights, File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
        var gets = hub.Requests.Where(r => r.ToCdn).ToList();
        Assert.Equal(2, gets.Count);
        Assert.Null(gets[0].Range);
        Assert.Equal("bytes=100000-", gets[1].Range);
    }

    [Fact]
    public void ADownloadThatKeepsBreakingStopsAndTheNextRunResumesIt()
    {
        using var hub = new FakeHub();
        var files = TinyFiles();
        hub.AddRepo(Tiny, files);
        var weights = files["model.safetensors"];
        string key = FakeHub.FaultKey("model.safetensors", weights);
        hub.Cuts[key] = new FakeHub.Cut(150_000, times: int.MaxValue);
        string cache = NewCache();
        var options = Options(hub, cache) with { ResumeRetries = 2 };

        var e = Fails(() => ModelSource.Resolve(Tiny, options));
        Assert.StartsWith($"{Tiny}/model.safetensors: the download kept breaking off (", e.Message);
        Assert.EndsWith("run again to resume it", e.Message);
        string blobs = Path.Combine(cache, "models--bertsharp-test--tiny-bert", "blobs");
        string part = Path.Combine(blobs, FakeHub.Sha256(weights) + ".incomplete");
        Assert.Equal(150_000, new FileInfo(part).Length);
        Assert.Null(PythonTryToLoadFromCache(cache, Tiny, "model.safetensors"));   // nothing half-written is visible
        Assert.False(File.Exists(Path.Combine(cache, "models--bertsharp-test--tiny-bert", "refs", "main")));

        hub.Cuts.Clear();
        hub.ClearRequests();
        string folder = ModelSource.Resolve(Tiny, options);
        Assert.Equal(weights, File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
        Assert.Equal("bytes=150000-", Assert.Single(hub.Requests, r => r.ToCdn).Range);
        Assert.False(File.Exists(part));
    }

    [Theory]
    [InlineData("model.safetensors", "sha256")]
    [InlineData("vocab.txt", "git blob sha1")]
    public void ACorruptedTransferIsRejectedAndNothingBecomesVisible(string file, string check)
    {
        using var hub = new FakeHub();
        var files = TinyFiles();
        hub.AddRepo(Tiny, files);
        hub.Corrupt[FakeHub.FaultKey(file, files[file])] = true;
        string cache = NewCache();

        var e = Fails(() => ModelSource.Resolve(Tiny, Options(hub, cache)));
        Assert.StartsWith($"{Tiny}/{file}: the download does not match its checksum ({check} ", e.Message);
        Assert.EndsWith("the file was deleted: run again to retry", e.Message);
        string blobs = Path.Combine(cache, "models--bertsharp-test--tiny-bert", "blobs");
        Assert.DoesNotContain(Directory.GetFiles(blobs), f => Path.GetFileName(f).StartsWith(FakeHub.EtagOf(file, files[file])));
        Assert.Null(PythonTryToLoadFromCache(cache, Tiny, file));
        Assert.False(File.Exists(Path.Combine(cache, "models--bertsharp-test--tiny-bert", "refs", "main")));

        hub.Corrupt.Clear();
        string folder = ModelSource.Resolve(Tiny, Options(hub, cache));   // a retry succeeds
        Assert.Equal(files[file], File.ReadAllBytes(Path.Combine(folder, file)));
    }

    [Fact]
    public void ARevisionCanBePinnedByCommitOrTag()
    {
        using var hub = new FakeHub();
        var v1 = TinyFiles();
        string c1 = hub.AddRepo(Tiny, v1);
        var v2 = TinyFiles();
        v2["vocab.txt"] = [.. v1["vocab.txt"], .. "extra\n"u8.ToArray()];
        string c2 = hub.AddCommit(Tiny, v2, "main");
        hub.RepoOf(Tiny).Refs["v1.0"] = c1;
        string cache = NewCache();

        string pinned = ModelSource.Resolve($"{Tiny}@{c1}", Options(hub, cache));
        Assert.EndsWith(c1, pinned);
        Assert.Equal(v1["vocab.txt"], File.ReadAllBytes(Path.Combine(pinned, "vocab.txt")));
        Assert.All(hub.Requests.Where(r => !r.ToCdn), r => Assert.Contains($"/resolve/{c1}/", r.Path));
        Assert.False(Directory.Exists(Path.Combine(cache, "models--bertsharp-test--tiny-bert", "refs")));   // a commit needs no ref

        hub.ClearRequests();
        Assert.Equal(pinned, ModelSource.Resolve($"{Tiny}@{c1}", Options(hub, cache)));
        Assert.Empty(hub.Requests);   // a complete snapshot of a commit: nothing to ask

        string main = ModelSource.Resolve(Tiny, Options(hub, cache));
        Assert.EndsWith(c2, main);
        Assert.Equal(v2["vocab.txt"], File.ReadAllBytes(Path.Combine(main, "vocab.txt")));

        string tagged = ModelSource.Resolve($"{Tiny}@v1.0", Options(hub, cache));
        Assert.Equal(pinned, tagged);
        Assert.Equal(c1, File.ReadAllText(Path.Combine(cache, "models--bertsharp-test--tiny-bert", "refs", "v1.0")));
    }

    [Fact]
    public void NotFoundErrorsNameTheIdAndWhatToDo()
    {
        using var hub = new FakeHub();
        hub.AddRepo(Tiny, TinyFiles());
        string cache = NewCache();

        var noRepo = Fails(() => ModelSource.Resolve("nobody/nothing", Options(hub, cache)));
        Assert.Equal($"nobody/nothing: no such model on {hub.Endpoint} (and no local folder of that name); check the id, or set HF_TOKEN if it is private", noRepo.Message);
        var noRepoWithToken = Fails(() => ModelSource.Resolve("nobody/nothing", Options(hub, cache, token: "hf_other")));
        Assert.Equal($"nobody/nothing: no such model on {hub.Endpoint}, or the token in HF_TOKEN has no access to it; check the id", noRepoWithToken.Message);

        var noRevision = Fails(() => ModelSource.Resolve($"{Tiny}@no-such-branch", Options(hub, cache)));
        Assert.Equal($"{Tiny}: revision 'no-such-branch' not found on {hub.Endpoint}; give an existing branch, tag or commit", noRevision.Message);

        var neither = Fails(() => ModelSource.Resolve("runs/a/b", Options(hub, cache)));
        Assert.Equal("runs/a/b: model folder not found, and not a Hub model id (an id is name or org/name)", neither.Message);
        Assert.Empty(hub.Requests.Where(r => r.Path.Contains("runs")));
    }

    [Fact]
    public void AFolderWithoutConfigOrWeightsIsNotAModel()
    {
        using var hub = new FakeHub();
        var files = TinyFiles();
        hub.AddRepo("org/no-config", files.Where(f => f.Key != "config.json").ToDictionary());
        hub.AddRepo("org/no-weights", files.Where(f => f.Key is not ("model.safetensors" or "pytorch_model.bin")).ToDictionary());
        hub.AddRepo("org/bin-only", files.Where(f => f.Key != "model.safetensors").ToDictionary());
        string cache = NewCache();

        Assert.Equal($"org/no-config: has no config.json on {hub.Endpoint} (revision 'main'): not a model folder",
            Fails(() => ModelSource.Resolve("org/no-config", Options(hub, cache))).Message);
        Assert.Equal($"org/no-weights: has neither model.safetensors nor pytorch_model.bin on {hub.Endpoint} (revision 'main'); BertSharp needs one of them",
            Fails(() => ModelSource.Resolve("org/no-weights", Options(hub, cache))).Message);
        string bin = ModelSource.Resolve("org/bin-only", Options(hub, cache));
        Assert.Equal(files["pytorch_model.bin"], File.ReadAllBytes(Path.Combine(bin, "pytorch_model.bin")));
    }

    [Fact]
    public void AGatedModelNeedsTheTokenWhichNeverGoesToTheCdn()
    {
        using var hub = new FakeHub();
        hub.AddRepo("org/gated", TinyFiles(), gated: true);
        string cache = NewCache();

        Assert.StartsWith($"org/gated: gated or private on {hub.Endpoint} (HTTP 401: Access to model org/gated is restricted.",
            Fails(() => ModelSource.Resolve("org/gated", Options(hub, cache))).Message);
        Assert.EndsWith("): set HF_TOKEN to a token with access", Fails(() => ModelSource.Resolve("org/gated", Options(hub, cache))).Message);
        var wrong = Fails(() => ModelSource.Resolve("org/gated", Options(hub, cache, token: "hf_no_access")));
        Assert.StartsWith($"org/gated: gated or private on {hub.Endpoint}, and the token in HF_TOKEN has no access (HTTP 403", wrong.Message);
        Assert.EndsWith($"request access at {hub.Endpoint}/org/gated or set HF_TOKEN to another token", wrong.Message);

        hub.ClearRequests();
        string folder = ModelSource.Resolve("org/gated", Options(hub, cache, token: FakeHub.Token));
        Assert.True(File.Exists(Path.Combine(folder, "model.safetensors")));
        Assert.All(hub.Requests.Where(r => !r.ToCdn), r => Assert.Equal("Bearer " + FakeHub.Token, r.Authorization));
        Assert.Null(Assert.Single(hub.Requests, r => r.ToCdn).Authorization);
    }

    [Fact]
    public void OfflineWithNothingCachedSaysSo()
    {
        using var hub = new FakeHub();
        hub.AddRepo(Tiny, TinyFiles());
        string cache = NewCache();
        var e = Fails(() => ModelSource.Resolve(Tiny, Options(hub, cache, offline: true)));
        Assert.Equal($"HF_HUB_OFFLINE is set and {Tiny} is not in the cache {cache}: run once online or unset HF_HUB_OFFLINE", e.Message);
        Assert.Empty(hub.Requests);
    }

    [Fact]
    public void AnUnreachableHubFailsClearlyUnlessTheModelIsCached()
    {
        string cache = NewCache();
        var unreachable = new HubOptions { Endpoint = $"http://127.0.0.1:{LocalHttpServerPort()}", CacheDir = cache, RetryDelay = TimeSpan.Zero };
        var e = Fails(() => ModelSource.Resolve(Tiny, unreachable));
        Assert.StartsWith($"{Tiny}: cannot reach {unreachable.Endpoint} (", e.Message);
        Assert.EndsWith($"and the model is not in the cache {cache}: check the network (or HF_ENDPOINT); models already in the cache also work offline (HF_HUB_OFFLINE=1)", e.Message);

        using var hub = new FakeHub();
        string commit = hub.AddRepo(Tiny, TinyFiles());
        string folder = ModelSource.Resolve(Tiny, Options(hub, cache));
        var notes = new List<string>();
        Assert.Equal(folder, ModelSource.Resolve(Tiny, unreachable with { Log = notes.Add }));
        Assert.StartsWith($"{Tiny}: {unreachable.Endpoint} cannot be reached (", Assert.Single(notes));
        Assert.EndsWith($"using the cached snapshot {commit}", notes[0]);
    }

    static int LocalHttpServerPort() => Data.LocalHttpServer.ClosedPort();

    [Fact]
    public void ADiskFullNamesTheCacheFolder()
    {
        if (!OperatingSystem.IsLinux() || !File.Exists("/dev/full")) return;   // /dev/full answers every write with ENOSPC
        using var hub = new FakeHub();
        var files = TinyFiles();
        hub.AddRepo(Tiny, files);
        string cache = NewCache();
        string blobs = Path.Combine(cache, "models--bertsharp-test--tiny-bert", "blobs");
        Directory.CreateDirectory(blobs);
        File.CreateSymbolicLink(Path.Combine(blobs, FakeHub.Sha256(files["model.safetensors"]) + ".incomplete"), "/dev/full");

        var e = Fails(() => ModelSource.Resolve(Tiny, Options(hub, cache)));
        Assert.Equal($"{cache}: disk full while downloading {Tiny}/model.safetensors ({files["model.safetensors"].Length:N0} bytes); free space there or set HF_HUB_CACHE to a folder on another disk (the partial download resumes)", e.Message);
        Assert.Null(PythonTryToLoadFromCache(cache, Tiny, "model.safetensors"));
    }

    [Fact]
    public async Task ConcurrentFetchesOfOneModelDownloadEachFileOnce()
    {
        using var hub = new FakeHub { SlowBodyMs = 20 };
        var files = TinyFiles();
        hub.AddRepo(Tiny, files);
        string cache = NewCache();

        var fetches = Enumerable.Range(0, 3).Select(_ => Task.Run(() => ModelSource.ResolveAsync(Tiny, Options(hub, cache)))).ToArray();
        var folders = await Task.WhenAll(fetches);

        Assert.Single(folders.Distinct());
        Assert.Equal(files["model.safetensors"], File.ReadAllBytes(Path.Combine(folders[0], "model.safetensors")));
        Assert.Single(hub.Requests, r => r.ToCdn);   // the others waited on the blob's lock, then found it
        Assert.Equal(4, Directory.GetFiles(Path.Combine(cache, "models--bertsharp-test--tiny-bert", "blobs")).Length);   // and no .incomplete
    }

    [Fact]
    public void ARenamedRepositoryIsFollowedAndCachedUnderTheNameAskedFor()
    {
        using var hub = new FakeHub();
        string commit = hub.AddRepo("google-bert/tiny", TinyFiles());
        hub.AddAlias("tiny", "google-bert/tiny");
        string cache = NewCache();
        string folder = ModelSource.Resolve("tiny", Options(hub, cache));
        Assert.Equal(Path.Combine(cache, "models--tiny", "snapshots", commit), folder);
        Assert.Equal(Path.Combine(folder, "config.json"), PythonTryToLoadFromCache(cache, "tiny", "config.json"));
    }

    [Fact]
    public void AFolderStaysAFolderAndLoadersTakeIds()
    {
        using var hub = new FakeHub();
        hub.AddRepo(TinyClassifier, TinyClassifierFiles());
        string cache = NewCache();
        Assert.Equal(TestPaths.TinyBert, ModelSource.Resolve(TestPaths.TinyBert, Options(hub, cache)));
        Assert.Empty(hub.Requests);

        using var model = FineTunedModel.Load(TinyClassifier, new LoadOptions { Hub = Options(hub, cache) });
        Assert.Equal("classify", model.TaskName);
        Assert.StartsWith(Path.Combine(cache, "models--bertsharp-test--tiny-classifier", "snapshots"), model.LoadReport!.Source);
    }
}
