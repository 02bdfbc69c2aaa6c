using BertSharp.Inference;

namespace BertSharp.Serving;

/// <summary>How a model is served: batching, limits, truncation and access.</summary>
public sealed record ServeOptions
{
    /// <summary>Dynamic batching of concurrent requests (<see cref="InferenceQueue"/>).</summary>
    public InferenceQueueOptions Batching { get; init; } = new();
    /// <summary>Inputs one request may carry, at most.</summary>
    public int MaxClientBatchSize { get; init; } = 64;
    /// <summary>Request body bytes, at most (larger bodies get 413).</summary>
    public long MaxRequestBytes { get; init; } = 4 << 20;
    /// <summary>Cut inputs longer than the model takes (true), or refuse them with 400 (false, the default; a request's
    /// "truncate" field decides for that request).</summary>
    public bool Truncate { get; init; }
    /// <summary>When set, every route but GET /health and the page needs "Authorization: Bearer KEY".</summary>
    public string? ApiKey { get; init; }
    /// <summary>The model's name in /info (default: the folder).</summary>
    public string? ModelId { get; init; }
}
