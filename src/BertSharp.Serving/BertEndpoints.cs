using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;

namespace BertSharp.Serving;

/// <summary>
/// The HTTP routes over a <see cref="BertService"/>, for `bert serve` and for any ASP.NET Core app:
/// <code>
/// await using var bert = BertService.Load("runs/snli");
/// app.MapBert(bert);            // POST /embed /predict /tokenize, GET /health /info /metrics /openapi.json /
/// </code>
/// JSON in, JSON out; errors are {"error": …, "error_type": …} with a 4xx status (400 bad input, 401 a missing or
/// wrong API key, 413 a body over the limit, 429 the queue full).
/// </summary>
public static class BertEndpoints
{
    // Relaxed escaping: an error message's quotes read as quotes, not \u0022 (the body is JSON, never HTML).
    static readonly JsonSerializerOptions Compact = new() { WriteIndented = false, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static IEndpointRouteBuilder MapBert(this IEndpointRouteBuilder app, BertService service, string prefix = "")
    {
        app.MapPost(prefix + "/embed", ctx => Handle(ctx, service, "/embed", async body => await service.EmbedAsync(body)));
        app.MapPost(prefix + "/predict", ctx => Handle(ctx, service, "/predict", async body => await service.PredictAsync(body)));
        app.MapPost(prefix + "/tokenize", ctx => Handle(ctx, service, "/tokenize", body => Task.FromResult(service.Tokenize(body))));
        app.MapGet(prefix + "/info", ctx => Handle(ctx, service, "/info", _ => Task.FromResult<JsonNode>(service.Info()), readsBody: false));
        app.MapGet(prefix + "/health", ctx =>
        {
            service.Metrics.Record("/health", 200, TimeSpan.Zero);
            return Results.Ok().ExecuteAsync(ctx);
        });
        app.MapGet(prefix + "/metrics", async ctx =>
        {
            if (!Authorized(ctx, service)) { await Error(ctx, service, "/metrics", Stopwatch.StartNew(), Unauthorized()); return; }
            service.Metrics.Record("/metrics", 200, TimeSpan.Zero);
            ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await ctx.Response.WriteAsync(service.Metrics.Render(service.QueueStats));
        });
        app.MapGet(prefix + "/openapi.json", ctx => Handle(ctx, service, "/openapi.json", _ => Task.FromResult<JsonNode>(OpenApi.Document(service)), readsBody: false));
        app.MapGet(prefix + "/", async ctx =>
        {
            service.Metrics.Record("/", 200, TimeSpan.Zero);
            ctx.Response.ContentType = "text/html; charset=utf-8";
            await using var page = typeof(BertEndpoints).Assembly.GetManifestResourceStream("BertSharp.Serving.index.html")!;
            await page.CopyToAsync(ctx.Response.Body);
        });
        return app;
    }

    static ApiException Unauthorized() => new(401, "unauthorized", "this server needs an API key: send the header \"Authorization: Bearer KEY\"");

    static bool Authorized(HttpContext ctx, BertService service) =>
        service.Options.ApiKey is not { } key || ctx.Request.Headers.Authorization.ToString() == $"Bearer {key}";

    static async Task Handle(HttpContext ctx, BertService service, string route, Func<JsonNode?, Task<JsonNode>> answer, bool readsBody = true)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            if (!Authorized(ctx, service)) throw Unauthorized();
            JsonNode? body = readsBody ? await ReadBody(ctx, service) : null;
            var result = await answer(body);
            ctx.Response.ContentType = "application/json";
            await ctx.Response.WriteAsync(result.ToJsonString(Compact));
            service.Metrics.Record(route, 200, clock.Elapsed);
        }
        catch (ApiException e)
        {
            await Error(ctx, service, route, clock, e);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The model failed on input that passed the checks: the server stays up and says so.
            await Error(ctx, service, route, clock, new ApiException(500, "backend", $"{e.GetType().Name}: {e.Message.Split('\n')[0]}"));
        }
    }

    static async Task<JsonNode?> ReadBody(HttpContext ctx, BertService service)
    {
        long limit = service.Options.MaxRequestBytes;
        var size = ctx.Features.Get<IHttpMaxRequestBodySizeFeature>();
        if (ctx.Request.ContentLength is long length && length > limit)
        {
            // Read and drop a body of moderate size, so that the client, still sending it, gets the 413 instead of
            // a connection closed under it; a huge one is cut off.
            if (length <= DrainLimit && size is { IsReadOnly: false })
            {
                size.MaxRequestBodySize = length;
                await ctx.Request.Body.CopyToAsync(Stream.Null, ctx.RequestAborted);
            }
            else ctx.Response.Headers.Connection = "close";
            throw TooLarge(limit);
        }
        if (size is { IsReadOnly: false }) size.MaxRequestBodySize = limit;
        try
        {
            return await JsonNode.ParseAsync(ctx.Request.Body, cancellationToken: ctx.RequestAborted);
        }
        catch (JsonException e)
        {
            throw ApiException.Invalid($"malformed JSON: {e.Message.Split('\n')[0]}");
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw TooLarge(limit);
        }
    }

    const long DrainLimit = 64 << 20;

    static ApiException TooLarge(long limit) => new(413, "payload_too_large", $"the request body is larger than the server takes ({limit:N0} bytes)");

    static async Task Error(HttpContext ctx, BertService service, string route, Stopwatch clock, ApiException e)
    {
        service.Metrics.Record(route, e.Status, clock.Elapsed);
        if (ctx.Response.HasStarted) return;
        ctx.Response.StatusCode = e.Status;
        if (e.Status == 429) ctx.Response.Headers.RetryAfter = "1";
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(new JsonObject { ["error"] = e.Message, ["error_type"] = e.ErrorType }.ToJsonString(Compact));
    }
}
