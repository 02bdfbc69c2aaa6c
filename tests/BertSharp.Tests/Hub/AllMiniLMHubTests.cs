using System.Diagnostics;
using BertSharp.Hub;
using BertSharp.Tests.Data;
using Xunit.Abstractions;
using static BertSharp.Tests.Hub.HubFixtures;

namespace BertSharp.Tests.Hub;

/// <summary>The shared all-MiniLM-L6-v2 folder served as its Hub repository by the local fake Hub: fetched, found
/// again online and offline, each at the request cost asserted; the times are logged, never asserted
/// (bench/test-timings.sh prints them).</summary>
public class AllMiniLMHubTests(ITestOutputHelper output)
{
    [RealDataFact("models/all-MiniLM-L6-v2")]
    public void FetchedOnceThenFoundWithOneHeadOnlineAndNoRequestOffline()
    {
        using var hub = new FakeHub();
        var files = MiniLMFiles();
        string commit = hub.AddRepo(MiniLM, files);
        string cache = Path.Combine(TestPaths.TempDir("minilm"), "hub");

        var sw = Stopwatch.StartNew();
        string folder = ModelSource.Resolve(MiniLM, Options(hub, cache));
        double first = sw.Elapsed.TotalSeconds;
        var requests = hub.Requests;
        // config, vocab, tokenizer_config, special_tokens_map, model.safetensors, modules.json, 1_Pooling/config.json,
        // sentence_bert_config.json, and config_sentence_transformers.json (which this copy lacks: 404, recorded)
        Assert.Equal(9, requests.Count(r => r.Method == "HEAD"));
        Assert.Equal(8, requests.Count(r => r.Method == "GET"));
        Assert.Single(requests, r => r.ToCdn);
        foreach (var (name, bytes) in files.Where(f => !f.Key.StartsWith("onnx/") && f.Key != "pytorch_model.bin"))
            Assert.Equal(bytes, File.ReadAllBytes(PythonTryToLoadFromCache(cache, MiniLM, name)!));
        Assert.Equal("NO_EXIST", PythonTryToLoadFromCache(cache, MiniLM, "config_sentence_transformers.json"));
        Assert.Null(PythonTryToLoadFromCache(cache, MiniLM, "pytorch_model.bin"));

        hub.ClearRequests();
        sw.Restart();
        Assert.Equal(folder, ModelSource.Resolve(MiniLM, Options(hub, cache)));
        double online = sw.Elapsed.TotalMilliseconds;
        Assert.Equal("HEAD", Assert.Single(hub.Requests).Method);

        hub.ClearRequests();
        sw.Restart();
        Assert.Equal(folder, ModelSource.Resolve(MiniLM, Options(hub, cache, offline: true)));
        double offline = sw.Elapsed.TotalMilliseconds;
        Assert.Empty(hub.Requests);
        Assert.EndsWith(commit, folder);

        output.WriteLine($"all-MiniLM-L6-v2 from the local fake Hub: first fetch {first:F2} s (90.9 MB), cached and online {online:F1} ms, offline {offline:F1} ms");
    }
}
