using System.Text;
using BertSharp.Hub;
using BertSharp.Tests.Data;

namespace BertSharp.Tests.Hub;

/// <summary>The repositories the Hub tests serve, and the helpers they share.</summary>
internal static class HubFixtures
{
    public const string Tiny = "bertsharp-test/tiny-bert";
    public const string TinySentence = "bertsharp-test/tiny-sentence";
    public const string TinyClassifier = "bertsharp-test/tiny-classifier";
    public const string MiniLM = "sentence-transformers/all-MiniLM-L6-v2";

    static byte[] Fixture(string name) => File.ReadAllBytes(Path.Combine(TestPaths.TinyBert, name));

    /// <summary>The tiny BERT as a Hub repository, with files a BERT folder does not need beside it (which must not be fetched).</summary>
    public static Dictionary<string, byte[]> TinyFiles() => new()
    {
        ["config.json"] = Fixture("config.json"),
        ["vocab.txt"] = Fixture("vocab.txt"),
        ["tokenizer_config.json"] = Fixture("tokenizer_config.json"),
        ["model.safetensors"] = Fixture("model.safetensors"),
        ["pytorch_model.bin"] = Fixture("pytorch_model.bin"),
        ["README.md"] = Fixture("README.md"),
        ["onnx/model.onnx"] = Encoding.ASCII.GetBytes("not fetched"),
        ["tf_model.h5"] = Encoding.ASCII.GetBytes("not fetched either"),
        [".gitattributes"] = Encoding.ASCII.GetBytes("*.safetensors filter=lfs diff=lfs merge=lfs -text\n"),
    };

    /// <summary>The tiny BERT with sentence-transformers metadata: a Pooling module in 1_Pooling and a Normalize module
    /// (whose folder holds no files).</summary>
    public static Dictionary<string, byte[]> TinySentenceFiles()
    {
        var files = TinyFiles();
        files["modules.json"] = Encoding.UTF8.GetBytes("""
            [
              {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
              {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
              {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
            ]
            """);
        files["1_Pooling/config.json"] = Encoding.UTF8.GetBytes("""{"word_embedding_dimension": 32, "pooling_mode_mean_tokens": true}""");
        files["sentence_bert_config.json"] = Encoding.UTF8.GetBytes("""{"max_seq_length": 64, "do_lower_case": false}""");
        return files;
    }

    /// <summary>A fine-tuned classifier (the tiny BERT's sequence-classification head) with its tokenizer.</summary>
    public static Dictionary<string, byte[]> TinyClassifierFiles()
    {
        string head = Path.Combine(TestPaths.TinyBert, "heads", "sequence-classification");
        return new()
        {
            ["config.json"] = File.ReadAllBytes(Path.Combine(head, "config.json")),
            ["model.safetensors"] = File.ReadAllBytes(Path.Combine(head, "model.safetensors")),
            ["vocab.txt"] = Fixture("vocab.txt"),
            ["tokenizer_config.json"] = Fixture("tokenizer_config.json"),
        };
    }

    static readonly Lazy<Dictionary<string, byte[]>> s_miniLM = new(() =>
    {
        string dir = Path.Combine(RealData.Dir!, "models", "all-MiniLM-L6-v2");
        var files = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(dir, f).Replace(Path.DirectorySeparatorChar, '/'), File.ReadAllBytes);
        files["onnx/model.onnx"] = Encoding.ASCII.GetBytes("not fetched");
        files["pytorch_model.bin"] = Encoding.ASCII.GetBytes("not fetched: model.safetensors is there");
        return files;
    });

    /// <summary>The shared all-MiniLM-L6-v2 folder as its Hub repository (read once), plus files that must not be fetched.</summary>
    public static Dictionary<string, byte[]> MiniLMFiles() => s_miniLM.Value;

    public static HubOptions Options(FakeHub hub, string cacheDir, string? token = null, bool offline = false, Action<string>? log = null) => new()
    {
        Endpoint = hub.Endpoint, CacheDir = cacheDir, Token = token, Offline = offline, Log = log,
        RetryDelay = TimeSpan.FromMilliseconds(10), StallTimeout = TimeSpan.FromSeconds(30),
    };

    /// <summary>What Python's huggingface_hub.try_to_load_from_cache returns, transcribed: the cached path, "NO_EXIST"
    /// when the file is known missing at the revision's commit, or null when the cache cannot tell.</summary>
    public static string? PythonTryToLoadFromCache(string cacheDir, string repoId, string file, string revision = "main")
    {
        string repoCache = Path.Combine(cacheDir, "models--" + repoId.Replace("/", "--"));
        if (!Directory.Exists(repoCache)) return null;
        string refs = Path.Combine(repoCache, "refs"), snapshots = Path.Combine(repoCache, "snapshots"), noExist = Path.Combine(repoCache, ".no_exist");
        if (Directory.Exists(refs) && File.Exists(Path.Combine(refs, revision)))
            revision = File.ReadAllText(Path.Combine(refs, revision));   // read as is: no strip, as Python does
        if (File.Exists(Path.Combine(noExist, revision, file))) return "NO_EXIST";
        if (!Directory.Exists(snapshots)) return null;
        if (!Directory.GetFileSystemEntries(snapshots).Select(Path.GetFileName).Contains(revision)) return null;
        string cached = Path.Combine(snapshots, revision, file);
        return IsFileFollowingLinks(cached) ? cached : null;
    }

    /// <summary>Python's os.path.isfile: true for a regular file or a link that ends at one.</summary>
    public static bool IsFileFollowingLinks(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) return false;
        return info.LinkTarget is null || info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo { Exists: true };
    }

    /// <summary>Reports synchronously, in order (Progress&lt;T&gt; would post to the thread pool).</summary>
    public sealed class ListProgress<T> : IProgress<T>
    {
        readonly List<T> _items = new();
        public IReadOnlyList<T> Items { get { lock (_items) return _items.ToList(); } }
        public void Report(T value) { lock (_items) _items.Add(value); }
    }
}
