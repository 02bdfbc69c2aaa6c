using System.Diagnostics;
using System.Text.Json;
using BertSharp.Inference;
using BertSharp.Serving;
using BertSharp.Tasks;
using BertSharp.Tasks.Classification;
using BertSharp.Tests.Data;
using BertSharp.Tests.Tasks;

namespace BertSharp.Tests.Serving;

/// <summary>`bert serve`'s routes on a real Kestrel server: answers, every error code, batching many callers, the API
/// key, and a graceful stop of the real process.</summary>
public class ServeTests
{
    static readonly Lazy<string> Classifier = new(() => FineTuneClassifier(truncate: false));
    /// <summary>A classifier that cuts long inputs (fine-tuned with --truncate): the server refuses them unless told to cut.</summary>
    static readonly Lazy<string> CuttingClassifier = new(() => FineTuneClassifier(truncate: true));

    static string FineTuneClassifier(bool truncate)
    {
        var dir = TestPaths.TempDir("serve-classifier");
        CliFineTuneTests.WriteClassification(dir);
        var run = Path.Combine(dir, "run");
        FineTuneRun.Run(new FineTuneOptions
        {
            Task = "classify", Model = TestPaths.TinyBert, Train = Path.Combine(dir, "train.tsv"), Dev = Path.Combine(dir, "dev.tsv"), Output = run, MaxSteps = 2, Seed = 3, Threads = 1,
            Truncate = truncate,
        });
        return run;
    }

    static Task<TestServer> Serve(string dir, ServeOptions? options = null) => TestServer.Start(BertService.Load(dir, options));

    [RealDataFact("models/all-MiniLM-L6-v2")]
    public async Task EmbedAnswersTheFixtureVectors()
    {
        var reference = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixtures, "minilm-reference", "reference_outputs.json"))).RootElement;
        var texts = reference.GetProperty("embedding_texts").EnumerateArray().Select(t => t.GetString()!).ToArray();
        var expected = reference.GetProperty("embeddings").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
        await using var server = await Serve(Path.Combine(RealData.Dir!, "models", "all-MiniLM-L6-v2"));
        var (status, body) = await server.Post("/embed", new { inputs = texts });
        Assert.Equal(200, status);
        var vectors = body.EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
        Assert.Equal(texts.Length, vectors.Length);
        for (int i = 0; i < texts.Length; i++)
            for (int k = 0; k < 384; k++) Assert.True(Math.Abs(vectors[i][k] - expected[i][k]) < 1e-5, $"text {i}, dimension {k}");
        (status, body) = await server.Post("/embed", """{"inputs": "This is an example sentence"}""");
        Assert.Equal(200, status);
        var single = body[0].EnumerateArray().Select(v => v.GetDouble()).ToArray();
        for (int k = 0; k < 384; k++) Assert.Equal(vectors[0][k], single[k], 1e-6);
    }

    [Fact]
    public async Task AMultiLabelClassifierMarksTheLabelsOverItsThreshold()
    {
        string dir = Export.TinyTaskFolders.Make("classify", seed: 23, multiLabel: true, threshold: 0.45);
        await using var server = await Serve(dir);
        var model = (BertSharp.Tasks.Classification.ClassificationModel)server.Service.Model;
        foreach (var text in new[] { "the dog is red", "one", "what of the day" })
        {
            var (status, body) = await server.Post("/predict", new { inputs = text });
            Assert.Equal(200, status);
            var expected = model.Predict(text);
            Assert.Equal(3, body.GetArrayLength());
            foreach (var x in body.EnumerateArray())
            {
                string label = x.GetProperty("label").GetString()!;
                Assert.Equal(expected.Probabilities[label], x.GetProperty("score").GetDouble(), 1e-5);
                Assert.Equal(expected.Labels.Contains(label), x.GetProperty("predicted").GetBoolean());
                Assert.Equal(x.GetProperty("score").GetDouble() >= 0.45, x.GetProperty("predicted").GetBoolean());
            }
        }
        var classifier = JsonDocument.Parse(await server.Client.GetStringAsync("/info")).RootElement.GetProperty("model_type").GetProperty("classifier");
        Assert.True(classifier.GetProperty("multi_label").GetBoolean());
        Assert.Equal(0.45, classifier.GetProperty("threshold").GetDouble());
    }

    [Fact]
    public async Task ClassifierRoutesAnswerAsTheModelDoes()
    {
        await using var server = await Serve(Classifier.Value);
        var model = (BertSharp.Tasks.Classification.ClassificationModel)server.Service.Model;
        Assert.True(model.TakesPairs);
        var (status, body) = await server.Post("/predict", """{"inputs": ["the word is", "it was"]}""");
        Assert.Equal(200, status);
        var expected = model.Predict("the word is", "it was");
        Assert.Equal(expected.Label, body[0].GetProperty("label").GetString());
        Assert.Equal(expected.Probability, body[0].GetProperty("score").GetDouble(), 1e-5);
        Assert.Equal(1.0, body.EnumerateArray().Sum(x => x.GetProperty("score").GetDouble()), 1e-4);

        (status, body) = await server.Post("/predict", """{"inputs": [["the word is", "it was"], {"text": "one", "pair": "two"}]}""");
        Assert.Equal(200, status);
        Assert.Equal(2, body.GetArrayLength());
        Assert.Equal(model.Predict("one", "two").Label, body[1][0].GetProperty("label").GetString());

        (status, body) = await server.Post("/predict", """{"inputs": "the word is"}""");
        Assert.Equal(400, status);
        Assert.Contains("takes pairs", body.GetProperty("error").GetString());

        (status, body) = await server.Post("/tokenize", """{"inputs": "The word"}""");
        Assert.Equal(200, status);
        Assert.Equal(["[CLS]", "the", "word", "[SEP]"], body[0].EnumerateArray().Select(t => t.GetProperty("text").GetString()).ToArray());
        Assert.Equal(4, body[0][2].GetProperty("start").GetInt32());

        var info = JsonDocument.Parse(await server.Client.GetStringAsync("/info")).RootElement;
        Assert.Equal("classify", info.GetProperty("task").GetString());
        Assert.Equal("torch", info.GetProperty("engine").GetString());
        Assert.Equal("maybe", info.GetProperty("model_type").GetProperty("classifier").GetProperty("id2label").GetProperty("0").GetString());
        Assert.Equal(System.Net.HttpStatusCode.OK, (await server.Client.GetAsync("/health")).StatusCode);
        var openapi = JsonDocument.Parse(await server.Client.GetStringAsync("/openapi.json")).RootElement;
        Assert.Equal("3.0.3", openapi.GetProperty("openapi").GetString());
        foreach (var route in new[] { "/embed", "/predict", "/tokenize", "/info", "/health", "/metrics", "/" }) Assert.True(openapi.GetProperty("paths").TryGetProperty(route, out _), route);
        Assert.Contains("<form", await server.Client.GetStringAsync("/"));
        var metrics = await server.Client.GetStringAsync("/metrics");
        Assert.Contains("bert_requests_total{route=\"/predict\",status=\"200\"} 2", metrics);
        Assert.Contains("bert_requests_total{route=\"/predict\",status=\"400\"} 1", metrics);
        Assert.Contains("bert_inputs_total 3", metrics);
        Assert.Contains("bert_request_duration_seconds_bucket{route=\"/predict\",le=\"+Inf\"} 3", metrics);
    }

    [Fact]
    public async Task BadRequestsGetA4xxJsonErrorAndTheServerStaysUp()
    {
        await using var server = await Serve(CuttingClassifier.Value, new ServeOptions { MaxClientBatchSize = 4, MaxRequestBytes = 2000 });
        async Task Expect(int status, string route, string json, string message)
        {
            var (s, body) = await server.Post(route, json);
            Assert.Equal(status, s);
            Assert.Contains(message, body.GetProperty("error").GetString());
            Assert.False(string.IsNullOrEmpty(body.GetProperty("error_type").GetString()));
        }
        await Expect(400, "/predict", """{"inputs": ["a", """, "malformed JSON");
        await Expect(400, "/predict", """[1, 2]""", "must be a JSON object");
        await Expect(400, "/predict", """{"text": "a"}""", "\"inputs\" is missing");
        await Expect(400, "/predict", """{"inputs": 5}""", "must be a text");
        await Expect(400, "/predict", """{"inputs": []}""", "\"inputs\" is empty");
        await Expect(400, "/predict", """{"inputs": [["a", "b"], ["c", "d"], ["e", "f"], ["g", "h"], ["i", "j"]]}""", "more than the server takes (4)");
        await Expect(400, "/tokenize", """{"inputs": ["a", 7]}""", "inputs[1] must be a string");
        await Expect(400, "/embed", """{"inputs": "a"}""", "/embed needs an embedding model");
        await Expect(400, "/predict", """{"inputs": ["a", "b"], "truncate": "yes"}""", "\"truncate\" must be true or false");
        string longText = string.Join(' ', Enumerable.Repeat("word", 200));
        await Expect(400, "/predict", JsonSerializer.Serialize(new { inputs = new[] { longText, "b" } }), "more than the model takes (128)");
        var (status, _) = await server.Post("/predict", JsonSerializer.Serialize(new { inputs = new[] { longText, "b" }, truncate = true }));
        Assert.Equal(200, status);
        await Expect(413, "/predict", JsonSerializer.Serialize(new { inputs = new[] { string.Join(' ', Enumerable.Repeat("word", 1000)), "b" } }), "larger than the server takes");
        (status, _) = await server.Post("/predict", """{"inputs": ["still", "up"]}""");
        Assert.Equal(200, status);
    }

    [Fact]
    public async Task AClassifierFineTunedWithWindowsAnswersALongInputWhole()
    {
        await using var server = await Serve(Classifier.Value);
        string longText = string.Join(' ', Enumerable.Repeat("word", 200));
        var (status, body) = await server.Post("/predict", JsonSerializer.Serialize(new { inputs = new[] { longText, "b" } }));
        Assert.Equal(200, status);
        using var model = FineTunedModel.Load<ClassificationModel>(Classifier.Value);
        var expected = model.Predict(longText, "b");
        Assert.True(expected.Windows > 1);
        Assert.Equal(expected.Probability, body[0].GetProperty("score").GetDouble(), 1e-5);
    }

    [Fact]
    public async Task AnApiKeyGuardsEveryRouteButHealthAndThePage()
    {
        await using var server = await Serve(Classifier.Value, new ServeOptions { ApiKey = "s3cret" });
        var (status, body) = await server.Post("/predict", """{"inputs": ["a", "b"]}""");
        Assert.Equal(401, status);
        Assert.Equal("unauthorized", body.GetProperty("error_type").GetString());
        (status, _) = await server.Post("/predict", """{"inputs": ["a", "b"]}""", apiKey: "wrong");
        Assert.Equal(401, status);
        (status, _) = await server.Post("/predict", """{"inputs": ["a", "b"]}""", apiKey: "s3cret");
        Assert.Equal(200, status);
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await server.Client.GetAsync("/metrics")).StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await server.Client.GetAsync("/info")).StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await server.Client.GetAsync("/health")).StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await server.Client.GetAsync("/")).StatusCode);
    }

    [Fact]
    public async Task ConcurrentCallersEachGetTheirOwnAnswers()
    {
        var r = new Random(9);
        var words = File.ReadAllLines(Path.Combine(TestPaths.TinyBert, "vocab.txt")).Where(w => w.Length > 2 && w.All(char.IsLetter)).ToArray();
        var requests = Enumerable.Range(0, 40).Select(i => Enumerable.Range(0, 1 + r.Next(3)).Select(_ => string.Join(' ', Enumerable.Range(0, 1 + r.Next(20)).Select(_ => words[r.Next(words.Length)]))).ToArray()).ToArray();
        using var encoder = SentenceEncoder.Load(TestPaths.TinyBert);
        var expected = requests.Select(q => encoder.Encode(q)).ToArray();
        await using var server = await Serve(TestPaths.TinyBert, new ServeOptions { Batching = new InferenceQueueOptions { MaxBatchSize = 16, MaxWait = TimeSpan.FromMilliseconds(20) } });
        var answers = await Task.WhenAll(requests.Select(q => server.Post("/embed", new { inputs = q, normalize = false })));
        for (int i = 0; i < requests.Length; i++)
        {
            Assert.Equal(200, answers[i].Status);
            var got = answers[i].Body.EnumerateArray().Select(v => v.EnumerateArray().Select(x => x.GetSingle()).ToArray()).ToArray();
            Assert.Equal(requests[i].Length, got.Length);
            for (int j = 0; j < got.Length; j++)
                for (int k = 0; k < got[j].Length; k++) Assert.Equal(expected[i][j][k], got[j][k], 1e-5);
        }
        var stats = server.Service.QueueStats;
        Assert.Equal(requests.Sum(q => q.Length), stats.Inputs);
        Assert.True(stats.Batches < requests.Length, $"{stats.Batches} model calls for {requests.Length} concurrent requests: nothing was batched");
    }

    [Fact]
    public async Task AFullQueueAnswers429WithRetryAfter()
    {
        await using var server = await Serve(Classifier.Value, new ServeOptions
        {
            Batching = new InferenceQueueOptions { MaxBatchSize = 1, MaxQueuedInputs = 1, MaxWait = TimeSpan.Zero },
        });
        var statuses = new List<int>();
        for (int round = 0; round < 20 && !statuses.Contains(429); round++)
        {
            var burst = await Task.WhenAll(Enumerable.Range(0, 32).Select(async _ =>
            {
                using var response = await server.Client.PostAsync("/predict", new StringContent("""{"inputs": ["a b c", "d e f"]}""", System.Text.Encoding.UTF8, "application/json"));
                if ((int)response.StatusCode == 429) Assert.Equal("1", response.Headers.GetValues("Retry-After").Single());
                return (int)response.StatusCode;
            }));
            statuses.AddRange(burst);
        }
        Assert.Contains(429, statuses);
        Assert.All(statuses, s => Assert.True(s is 200 or 429, $"status {s}"));
    }

    static int QueuedInputs(string metrics) =>
        int.Parse(metrics.Split('\n').Single(l => l.StartsWith("bert_queue_inputs ")).Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);

    [LinuxX64Fact]
    public async Task SigtermFinishesTheRequestsInFlightAndExitsZero()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "bert.dll");
        var host = Environment.ProcessPath is string p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
        var psi = new ProcessStartInfo(host) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        // Requests wait up to 5 s for company, so they are surely in flight when the signal comes.
        foreach (var a in new[] { dll, "--threads", "1", "serve", Classifier.Value, "--port", "0", "--host", "127.0.0.1", "--max-wait-ms", "5000", "--max-batch-size", "1000" }) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var stderr = new List<string>();
        var listening = new TaskCompletionSource<string>();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (stderr) stderr.Add(e.Data);
            var m = System.Text.RegularExpressions.Regex.Match(e.Data, @"on (http://[0-9.:]+)");
            if (m.Success) listening.TrySetResult(m.Groups[1].Value);
        };
        process.BeginErrorReadLine();
        try
        {
            var url = await listening.Task.WaitAsync(TimeSpan.FromSeconds(60));
            using var client = new HttpClient { BaseAddress = new Uri(url) };
            var inFlight = Enumerable.Range(0, 8).Select(i => client.PostAsync("/predict",
                new StringContent($$"""{"inputs": ["text {{i}}", "pair"]}""", System.Text.Encoding.UTF8, "application/json"))).ToList();
            // The signal must come after every request was taken, or the closed listener refuses the late ones.
            var sw = Stopwatch.StartNew();
            while (QueuedInputs(await client.GetStringAsync("/metrics")) < inFlight.Count)
            {
                Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), "the requests never reached the queue");
                await Task.Delay(20);
            }
            Process.Start("kill", ["-TERM", process.Id.ToString()])!.WaitForExit();
            foreach (var t in inFlight)
            {
                using var response = await t;
                Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
            }
            Assert.True(process.WaitForExit(30_000), "the server did not exit after SIGTERM");
            // WaitForExit(timeout) does not wait for the redirected stream to drain; the overload without one does.
            process.WaitForExit();
            Assert.Equal(0, process.ExitCode);
            lock (stderr)
            {
                Assert.Contains("stopped", stderr);
                Assert.Contains(stderr, l => l.Contains("(classify, engine onnxruntime)"));   // the CLI's default engine, auto
            }
        }
        finally
        {
            if (!process.HasExited) process.Kill(true);
        }
    }
}
