using System.CommandLine;
using System.Net;
using BertSharp.Inference;
using BertSharp.Serving;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BertSharp.Cli.Commands;

/// <summary>`bert serve MODEL`: the model over HTTP (<see cref="BertEndpoints"/>) on Kestrel until Ctrl+C or SIGTERM.</summary>
public static class ServeCommand
{
    public const string ApiKeyVariable = "BERTSHARP_API_KEY";

    public static Command Build(CommandContext ctx)
    {
        var model = new Argument<string>("MODEL") { Description = "A model folder: a fine-tuned classify, similarity, tag or qa folder, or an embedding model (sentence-transformers folder, `bert finetune embed` run, any BERT folder); or a Hub id (org/name[@revision])" };
        var host = new Option<string>("--host") { Description = "Address to listen on: localhost, 0.0.0.0 (every interface) or an IP address", DefaultValueFactory = _ => "localhost" };
        var port = new Option<int>("--port") { Description = "Port (0: any free port, printed at start)", DefaultValueFactory = _ => 8080 };
        var d = new ServeOptions();
        var maxBatch = new Option<int>("--max-batch-size") { Description = "Inputs per model call, at most", DefaultValueFactory = _ => d.Batching.MaxBatchSize };
        var maxTokens = new Option<int>("--max-batch-tokens") { Description = "Tokens per model call, at most", DefaultValueFactory = _ => d.Batching.MaxBatchTokens };
        var maxWait = new Option<double>("--max-wait-ms") { Description = "How long a request waits for others to batch with", DefaultValueFactory = _ => d.Batching.MaxWait.TotalMilliseconds };
        var maxQueue = new Option<int>("--max-queue") { Description = "Inputs waiting at most; beyond it requests get 429", DefaultValueFactory = _ => d.Batching.MaxQueuedInputs };
        var maxClient = new Option<int>("--max-client-batch-size") { Description = "Inputs per request, at most", DefaultValueFactory = _ => d.MaxClientBatchSize };
        var maxBytes = new Option<long>("--max-request-bytes") { Description = "Request body size, at most (beyond it 413)", DefaultValueFactory = _ => d.MaxRequestBytes };
        var truncate = new Option<bool>("--truncate") { Description = "Cut inputs longer than the model takes instead of refusing them (a request's \"truncate\" field overrides)" };
        var apiKey = new Option<string?>("--api-key") { Description = $"Require \"Authorization: Bearer KEY\" (default: ${ApiKeyVariable} when set)" };
        var maxSeq = new Option<int?>("--max-seq-length") { Description = "Tokens per input (default: the model's own)" };
        var engine = new Option<string>("--engine") { Description = "What runs the forward pass: auto (onnxruntime where it can: classify, similarity, tag and embed models in fp32 on the CPU; else torch), torch, or onnxruntime (the model exported to ONNX at load)", DefaultValueFactory = _ => InferenceEngine.Auto };
        var cmd = new Command("serve", "Serve a model over HTTP: POST /embed /predict /tokenize, GET /info /health /metrics /openapi.json, and a page to try it at /")
        { model, host, port, maxBatch, maxTokens, maxWait, maxQueue, maxClient, maxBytes, truncate, apiKey, maxSeq, engine };
        cmd.WithDetails("Concurrent requests are batched together (up to --max-batch-size inputs and --max-batch-tokens tokens, waiting at most --max-wait-ms). " +
            "Errors are JSON {\"error\", \"error_type\"} with 400 (bad input), 401 (API key), 413 (body too large) or 429 (queue full). " +
            "Ctrl+C or SIGTERM stops taking requests, finishes those in flight and exits 0. /embed, /predict and /tokenize take the requests of " +
            "HuggingFace's text-embeddings-inference, e.g. curl -d '{\"inputs\": [\"hello\"]}' -H 'Content-Type: application/json' localhost:8080/embed.");
        cmd.SetAction(r =>
        {
            var options = new ServeOptions
            {
                Batching = new InferenceQueueOptions
                {
                    MaxBatchSize = r.GetValue(maxBatch), MaxBatchTokens = r.GetValue(maxTokens), MaxWait = TimeSpan.FromMilliseconds(r.GetValue(maxWait)),
                    MaxQueuedInputs = r.GetValue(maxQueue),
                },
                MaxClientBatchSize = r.GetValue(maxClient), MaxRequestBytes = r.GetValue(maxBytes), Truncate = r.GetValue(truncate),
                ApiKey = r.GetValue(apiKey) ?? Environment.GetEnvironmentVariable(ApiKeyVariable), ModelId = r.GetRequiredValue(model),
            };
            string dir = ModelArgument.Resolve(ctx, r.GetRequiredValue(model));
            var service = BertService.Load(dir, options, new LoadOptions { MaxSeqLength = r.GetValue(maxSeq), Precision = Cli.PrecisionOf(r), Device = r.GetValue(Cli.Device)!, Engine = r.GetValue(engine)! });
            try
            {
                foreach (var m in service.Model.LoadReport?.Messages() ?? []) ctx.Err.WriteLine($"warning: {m}");
                Serve(ctx, service, r.GetValue(host)!, r.GetValue(port)).GetAwaiter().GetResult();
            }
            finally
            {
                service.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
            ctx.Err.WriteLine("stopped");
            return 0;
        });
        return cmd;
    }

    static async Task Serve(CommandContext ctx, BertService service, string host, int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
        builder.WebHost.UseKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = service.Options.MaxRequestBytes;
            if (host == "localhost") k.ListenLocalhost(port);
            else if (host is "0.0.0.0" or "*") k.ListenAnyIP(port);
            else if (IPAddress.TryParse(host, out var ip)) k.Listen(ip, port);
            else throw new BertSharpException($"--host '{host}': give localhost, 0.0.0.0 or an IP address");
        });
        await using var app = builder.Build();
        app.MapBert(service);
        await app.StartAsync();
        var addresses = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        ctx.Err.WriteLine($"serving {service.ModelId} ({service.Model.TaskName}, engine {service.Model.EngineName}) on {string.Join(", ", addresses)}{(service.Options.ApiKey is null ? "" : " (API key required)")}; Ctrl+C stops");
        ctx.Err.Flush();
        await app.WaitForShutdownAsync();
    }
}
