using System.Diagnostics;
using System.Text.Json;
using BertSharp.Tests.Data;
using static BertSharp.Tests.Hub.HubFixtures;

namespace BertSharp.Tests.Hub;

/// <summary>The `bert` command with a Hub id, end to end: a separate process whose environment points HF_ENDPOINT at
/// the local fake Hub and HF_HOME at a temporary folder (this process's environment is left alone).</summary>
public class HubCliTests
{
    static (int Code, string Out, string Err) Bert(IReadOnlyDictionary<string, string> env, params string[] args)
    {
        var host = Environment.ProcessPath is string p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
        var psi = new ProcessStartInfo(host) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "bert.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var name in psi.Environment.Keys.Where(k => k.StartsWith("HF_") || k.StartsWith("HUGGINGFACE_") || k is "TRANSFORMERS_OFFLINE" or "XDG_CACHE_HOME").ToList())
            psi.Environment.Remove(name);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(300_000)) { process.Kill(true); throw new TimeoutException("bert did not finish"); }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void PredictFetchesAFineTunedModelByIdThenWorksOffline()
    {
        using var hub = new FakeHub();
        string commit = hub.AddRepo(TinyClassifier, TinyClassifierFiles());
        string hfHome = TestPaths.TempDir("hfhome");
        var env = new Dictionary<string, string> { ["HF_ENDPOINT"] = hub.Endpoint, ["HF_HOME"] = hfHome };

        var (code, stdout, err) = Bert(env, "predict", TinyClassifier, "hello world");
        Assert.True(code == 0, err);
        var line = JsonDocument.Parse(stdout.Trim()).RootElement;
        Assert.Equal("hello world", line.GetProperty("text").GetString());
        Assert.StartsWith("LABEL_", line.GetProperty("label").GetString());
        Assert.Contains("model.safetensors [####################] 100.0%", err);   // the download bar, on stderr
        Assert.True(File.Exists(Path.Combine(hfHome, "hub", "models--bertsharp-test--tiny-classifier", "snapshots", commit, "model.safetensors")));

        int before = hub.Requests.Count;
        var offline = new Dictionary<string, string>(env) { ["HF_HUB_OFFLINE"] = "1" };
        var again = Bert(offline, "predict", TinyClassifier, "hello world");
        Assert.True(again.Code == 0, again.Err);
        Assert.Equal(stdout, again.Out);
        Assert.Equal(before, hub.Requests.Count);

        var missing = Bert(offline, "predict", "org/not-cached", "hello");
        Assert.Equal(1, missing.Code);
        Assert.Equal($"error: HF_HUB_OFFLINE is set and org/not-cached is not in the cache {Path.Combine(hfHome, "hub")}: run once online or unset HF_HUB_OFFLINE", missing.Err.Trim());
    }

    [Fact]
    public void AnArgumentThatIsNeitherAFolderNorAnIdIsOneLine()
    {
        var (code, _, err) = Cli.CliRunner.Run("info", "runs/a/b");
        Assert.Equal(1, code);
        Assert.Equal("error: runs/a/b: model folder not found, and not a Hub model id (an id is name or org/name)", err.Trim());
    }

    [RealDataFact("models/all-MiniLM-L6-v2")]
    public void InfoOnAllMiniLMByIdThenOffline()
    {
        using var hub = new FakeHub();
        string commit = hub.AddRepo(MiniLM, MiniLMFiles());
        string hfHome = TestPaths.TempDir("hfhome");
        var env = new Dictionary<string, string> { ["HF_ENDPOINT"] = hub.Endpoint, ["HF_HOME"] = hfHome };

        var (code, stdout, err) = Bert(env, "info", MiniLM, "--json");
        Assert.True(code == 0, err);
        var doc = JsonDocument.Parse(stdout).RootElement;
        string snapshot = Path.Combine(hfHome, "hub", "models--sentence-transformers--all-MiniLM-L6-v2", "snapshots", commit);
        Assert.Equal(snapshot, doc.GetProperty("model_dir").GetString());
        Assert.Equal(6, doc.GetProperty("config").GetProperty("num_hidden_layers").GetInt32());
        Assert.Equal(384, doc.GetProperty("config").GetProperty("hidden_size").GetInt32());
        Assert.Equal(90_864_192, doc.GetProperty("files").GetProperty("model.safetensors").GetInt64());   // the blob's size, not the link's
        Assert.True(File.Exists(Path.Combine(snapshot, "1_Pooling", "config.json")));
        Assert.DoesNotContain(hub.Requests, r => r.File is "pytorch_model.bin" || r.File.StartsWith("onnx/"));

        int before = hub.Requests.Count;
        var again = Bert(new Dictionary<string, string>(env) { ["HF_HUB_OFFLINE"] = "1" }, "info", MiniLM, "--json");
        Assert.True(again.Code == 0, again.Err);
        Assert.Equal(stdout, again.Out);
        Assert.Equal(before, hub.Requests.Count);
    }
    [RealDataFact("models/all-MiniLM-L6-v2")]
    public void ANewUserEmbedsWithAllMiniLMByIdThenOffline()
    {
        using var hub = new FakeHub();
        hub.AddRepo(MiniLM, MiniLMFiles());
        var env = new Dictionary<string, string> { ["HF_ENDPOINT"] = hub.Endpoint, ["HF_HOME"] = TestPaths.TempDir("hfhome-embed") };
        var reference = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixtures, "minilm-reference", "reference_outputs.json"))).RootElement;
        var expected = reference.GetProperty("embeddings")[0].EnumerateArray().Select(v => v.GetDouble()).ToArray();
        string text = reference.GetProperty("embedding_texts")[0].GetString()!;

        foreach (var offline in new[] { false, true })
        {
            int before = hub.Requests.Count;
            var run = offline ? new Dictionary<string, string>(env) { ["HF_HUB_OFFLINE"] = "1" } : env;
            var (code, stdout, err) = Bert(run, "embed", MiniLM, text);
            Assert.True(code == 0, err);
            var vector = JsonDocument.Parse(stdout).RootElement.GetProperty("embedding").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            Assert.Equal(384, vector.Length);
            for (int k = 0; k < 384; k++) Assert.True(Math.Abs(vector[k] - expected[k]) < 1e-5, $"dimension {k}");
            if (offline) Assert.Equal(before, hub.Requests.Count);
            else Assert.True(hub.Requests.Count > before);
        }
    }
}
