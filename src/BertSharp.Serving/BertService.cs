using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Inference;
using BertSharp.Tasks;
using BertSharp.Tasks.Classification;
using BertSharp.Tasks.Embedding;
using BertSharp.Tasks.QuestionAnswering;
using BertSharp.Tasks.Similarity;
using BertSharp.Tasks.Tagging;

namespace BertSharp.Serving;

/// <summary>A request the server refuses: its HTTP status, TEI's error type, and a one-line message.</summary>
public sealed class ApiException(int status, string errorType, string message) : Exception(message)
{
    public int Status { get; } = status;
    /// <summary>"validation", "overloaded", "unauthorized", "payload_too_large", "not_found", "backend".</summary>
    public string ErrorType { get; } = errorType;

    public static ApiException Invalid(string message) => new(400, "validation", message);
}

/// <summary>
/// One model served to many callers, independent of HTTP: the JSON requests of the routes (embed, predict, tokenize,
/// info) checked and answered, through an <see cref="InferenceQueue"/> that batches concurrent callers.
/// <see cref="BertEndpoints.MapBert"/> puts it behind ASP.NET Core routes; request and response shapes follow
/// HuggingFace's text-embeddings-inference where it has the route.
/// </summary>
public sealed class BertService : IAsyncDisposable
{
    readonly InferenceQueue queue;

    public BertService(TaskModel model, ServeOptions? options = null, string? modelId = null)
    {
        Model = model;
        Options = options ?? new();
        ModelId = Options.ModelId ?? modelId ?? "model";
        queue = new InferenceQueue(model, Options.Batching);
    }

    /// <summary>Loads a model folder (or Hub id) as `bert predict` does (its task from config.json; a sentence-transformers or
    /// plain BERT folder as an embedding model).</summary>
    public static BertService Load(string modelDir, ServeOptions? options = null, LoadOptions? load = null)
    {
        modelDir = Hub.ModelSource.Resolve(modelDir, load?.Hub);
        // A folder of no task family (a pre-trained BERT) serves as an embedding model: mean pooling of its encoder.
        var model = TaskFamily.TryOf(Checkpoints.ModelFolder.ReadConfig(modelDir)) is null
            ? FineTunedModel.Load<EmbeddingModel>(modelDir, load)
            : FineTunedModel.Load(modelDir, load);
        try { return new BertService(model, options, modelDir); }
        catch { model.Dispose(); throw; }
    }

    public TaskModel Model { get; }
    public ServeOptions Options { get; }
    public string ModelId { get; }
    public ServingMetrics Metrics { get; } = new();
    public InferenceQueueStats QueueStats => queue.Stats;

    // ---- requests ----

    /// <summary>POST /embed: {"inputs": text | [texts], "normalize"?: bool, "truncate"?: bool} → [[floats]] (TEI).</summary>
    public async Task<JsonNode> EmbedAsync(JsonNode? body)
    {
        var request = Object(body);
        if (Model is not EmbeddingModel embedding)
            throw ApiException.Invalid($"this is {Family()}: /embed needs an embedding model; use /predict");
        var texts = Texts(request["inputs"], "inputs");
        bool truncate = Bool(request, "truncate") ?? Options.Truncate;
        bool normalize = Bool(request, "normalize") ?? true;
        int tokens = CheckLengths(texts.Select(t => (t, (string?)null)).ToList(), truncate);
        var predictions = await Run(texts.Select(t => new PredictInput(t)).ToList(), tokens);
        var result = new JsonArray();
        foreach (EmbeddingPrediction p in predictions)
        {
            var v = normalize && !embedding.Settings.Normalize ? Search.VectorMath.Normalized(p.Vector) : p.Vector;
            result.Add(new JsonArray(v.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray()));
        }
        return result;
    }

    /// <summary>POST /predict: one input or a batch ("inputs": text, [text, pair], [[text, pair], …], {"question",
    /// "context"} for question answering, {"words": […]} for tagging); one answer, or a list of them in order.</summary>
    public async Task<JsonNode> PredictAsync(JsonNode? body)
    {
        var request = Object(body);
        if (Bool(request, "raw_scores") == true) throw ApiException.Invalid("raw_scores is not supported: /predict answers probabilities");
        var (inputs, batch) = PredictInputs(request["inputs"]);
        bool truncate = Bool(request, "truncate") ?? Options.Truncate;
        CheckPairs(inputs);
        int tokens = Model.CutsLongInputs ? CheckLengths(inputs.Select(i => (i.Text, i.Pair)).ToList(), truncate) : inputs.Count * Model.MaxSeqLength;
        var predictions = await Run(inputs, tokens);
        var answers = predictions.Select(ToJson).ToList();
        return batch ? new JsonArray(answers.ToArray()) : answers[0]!;
    }

    /// <summary>POST /tokenize: {"inputs": text | [texts], "add_special_tokens"?: bool} → per input, its tokens with
    /// id, text, whether special, and character offsets (TEI).</summary>
    public JsonNode Tokenize(JsonNode? body)
    {
        var request = Object(body);
        var texts = Texts(request["inputs"], "inputs");
        bool specials = Bool(request, "add_special_tokens") ?? true;
        var tok = Model.Tokenizer;
        var result = new JsonArray();
        foreach (var text in texts)
        {
            var tokens = new JsonArray();
            JsonObject Special(int id) => new() { ["id"] = id, ["text"] = tok.IdToToken(id), ["special"] = true, ["start"] = null, ["stop"] = null };
            if (specials) tokens.Add(Special(tok.ClsId));
            foreach (var t in tok.TokenizeWithOffsets(text))
                tokens.Add(new JsonObject { ["id"] = t.Id, ["text"] = t.Token, ["special"] = false, ["start"] = t.Start, ["stop"] = t.End });
            if (specials) tokens.Add(Special(tok.SepId));
            result.Add(tokens);
        }
        return result;
    }

    /// <summary>GET /info: the model, its task and labels, and the limits (TEI's fields where it has them).</summary>
    public JsonObject Info()
    {
        var type = Model switch
        {
            EmbeddingModel e => new JsonObject { ["embedding"] = new JsonObject { ["pooling"] = SentenceEmbeddingSettings.Describe(e.Settings.Pooling), ["normalized"] = e.Settings.Normalize, ["dimensions"] = e.Dimension } },
            ClassificationModel c => new JsonObject { ["classifier"] = Classifier(c) },
            SimilarityModel => new JsonObject { ["similarity"] = new JsonObject() },
            TaggingModel t => new JsonObject { ["tagger"] = Labels(t.Config.Labels) },
            _ => new JsonObject { ["question_answering"] = new JsonObject() },
        };
        return new JsonObject
        {
            ["model_id"] = ModelId,
            ["model_dtype"] = Model.Model.Compute.Dtype.ToString().ToLowerInvariant(),
            ["model_type"] = type,
            ["task"] = Model.TaskName,
            ["engine"] = Model.EngineName,
            ["pairs"] = Model.TakesPairs,
            ["max_input_length"] = Model.MaxSeqLength,
            ["truncate"] = Options.Truncate,
            ["max_batch_tokens"] = Options.Batching.MaxBatchTokens,
            ["max_batch_requests"] = Options.Batching.MaxBatchSize,
            ["max_client_batch_size"] = Options.MaxClientBatchSize,
            ["max_queued_inputs"] = Options.Batching.MaxQueuedInputs,
            ["max_request_bytes"] = Options.MaxRequestBytes,
            ["version"] = typeof(BertService).Assembly.GetName().Version?.ToString(),
        };
    }

    static JsonObject Classifier(ClassificationModel c)
    {
        var o = Labels(c.Labels);
        if (c.MultiLabel)
        {
            o["multi_label"] = true;
            o["threshold"] = c.Threshold;
        }
        return o;
    }

    static JsonObject Labels(IReadOnlyList<string> labels) => new()
    {
        ["id2label"] = new JsonObject(labels.Select((l, i) => KeyValuePair.Create(i.ToString(System.Globalization.CultureInfo.InvariantCulture), (JsonNode?)l))),
        ["label2id"] = new JsonObject(labels.Select((l, i) => KeyValuePair.Create(l, (JsonNode?)i)).DistinctBy(kv => kv.Key)),
    };

    string Family() => TaskFamily.All.FirstOrDefault(f => f.Task == Model.TaskName)?.Description ?? Model.TaskName;

    async Task<IReadOnlyList<TaskPrediction>> Run(IReadOnlyList<PredictInput> inputs, int tokens)
    {
        try
        {
            return await queue.PredictAsync(inputs, tokens);
        }
        catch (QueueFullException e) { throw new ApiException(429, "overloaded", e.Message); }
        catch (BertSharpException e) { throw ApiException.Invalid(e.Message); }
    }

    // ---- reading requests ----

    static JsonObject Object(JsonNode? body) =>
        body as JsonObject ?? throw ApiException.Invalid("the request body must be a JSON object, e.g. {\"inputs\": \"some text\"}");

    static bool? Bool(JsonObject o, string name) => o[name] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        _ => throw ApiException.Invalid($"\"{name}\" must be true or false"),
    };

    static string? String(JsonNode? n) => n is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    List<string> Texts(JsonNode? inputs, string name)
    {
        var texts = inputs switch
        {
            null => throw ApiException.Invalid($"\"{name}\" is missing: give a text or a list of texts"),
            JsonValue when String(inputs) is { } s => [s],
            JsonArray a => a.Select((n, i) => String(n) ?? throw ApiException.Invalid($"{name}[{i}] must be a string")).ToList(),
            _ => throw ApiException.Invalid($"\"{name}\" must be a text or a list of texts"),
        };
        CheckCount(texts.Count);
        return texts;
    }

    void CheckCount(int count)
    {
        if (count == 0) throw ApiException.Invalid("\"inputs\" is empty");
        if (count > Options.MaxClientBatchSize)
            throw ApiException.Invalid($"{count} inputs in one request, more than the server takes ({Options.MaxClientBatchSize}); split the request");
    }

    (List<PredictInput> Inputs, bool Batch) PredictInputs(JsonNode? inputs)
    {
        PredictInput One(JsonNode? n, string where)
        {
            switch (n)
            {
                case JsonValue when String(n) is { } text:
                    return new PredictInput(text);
                case JsonArray a when a.Count is 1 or 2 && a.All(x => String(x) != null):
                    return new PredictInput(String(a[0])!, a.Count == 2 ? String(a[1]) : null);
                case JsonObject o when o["words"] is JsonArray words:
                    var w = words.Select((x, i) => String(x) ?? throw ApiException.Invalid($"{where}.words[{i}] must be a string")).ToList();
                    if (w.Count == 0) throw ApiException.Invalid($"{where}.words is empty");
                    return new PredictInput(string.Join(' ', w), null, w);
                case JsonObject o when o.ContainsKey("question") || o.ContainsKey("context"):
                    return new PredictInput(String(o["question"]) ?? throw ApiException.Invalid($"{where}.question must be a string"),
                        String(o["context"]) ?? throw ApiException.Invalid($"{where}.context must be a string"));
                case JsonObject o when o.ContainsKey("text"):
                    return new PredictInput(String(o["text"]) ?? throw ApiException.Invalid($"{where}.text must be a string"),
                        o["pair"] is null ? null : String(o["pair"]) ?? throw ApiException.Invalid($"{where}.pair must be a string"));
                default:
                    throw ApiException.Invalid($"{where} must be a text, a pair [text, text], {{\"text\", \"pair\"}}, {{\"question\", \"context\"}} or {{\"words\": […]}}");
            }
        }
        if (inputs is null) throw ApiException.Invalid("\"inputs\" is missing");
        // A list of strings is one input (a text or a pair), as text-embeddings-inference reads it; a list of
        // anything else is a batch.
        bool batch = inputs is JsonArray arr && !(arr.Count is 1 or 2 && arr.All(x => String(x) != null));
        var list = batch ? ((JsonArray)inputs).Select((n, i) => One(n, $"inputs[{i}]")).ToList() : [One(inputs, "inputs")];
        CheckCount(list.Count);
        return (list, batch);
    }

    void CheckPairs(IReadOnlyList<PredictInput> inputs)
    {
        for (int i = 0; i < inputs.Count; i++)
        {
            bool pair = inputs[i].Pair != null;
            if (Model.TakesPairs == false && pair)
                throw ApiException.Invalid($"input {i} is a pair, but this model ({Family()}) was fine-tuned on single texts");
            if (Model.TakesPairs == true && !pair)
                throw ApiException.Invalid(Model is QuestionAnsweringModel
                    ? $"input {i}: give a question and its context: {{\"question\": …, \"context\": …}}"
                    : $"input {i} is one text, but this model ({Family()}) takes pairs: [text, pair]");
            if (Model is EmbeddingModel && !pair)
                throw ApiException.Invalid($"input {i} is one text: /predict scores pairs with an embedding model (their cosine); use /embed for vectors");
            if (inputs[i].Text.Length == 0 && Model is not EmbeddingModel) throw ApiException.Invalid($"input {i} is an empty text");
        }
    }

    /// <summary>Refuses inputs longer than the model takes unless they may be cut; returns the batch's token count.</summary>
    int CheckLengths(IReadOnlyList<(string Text, string? Pair)> inputs, bool truncate)
    {
        var tok = Model.Tokenizer;
        long total = 0;
        for (int i = 0; i < inputs.Count; i++)
        {
            var (text, pair) = inputs[i];
            long n = tok.CountTokens(text) + (pair is null ? 2 : tok.CountTokens(pair) + 3);
            if (n > Model.MaxSeqLength && !truncate)
                throw ApiException.Invalid($"input {i} has {n} tokens, more than the model takes ({Model.MaxSeqLength}); send it shorter, set \"truncate\": true, or start the server with --truncate");
            total += Math.Min(n, Model.MaxSeqLength);
        }
        return (int)Math.Min(total, int.MaxValue);
    }

    static JsonNode ToJson(TaskPrediction p) => p switch
    {
        ClassificationPrediction c => new JsonArray(c.Probabilities.OrderByDescending(kv => kv.Value)
            .Select(kv => (JsonNode?)Scored(c, kv.Key, kv.Value)).ToArray()),
        SimilarityPrediction s => new JsonObject { ["score"] = Math.Round(s.Score, 6) },
        TaggingPrediction t => new JsonArray(t.Words.Zip(t.Tags).Select(x => (JsonNode?)new JsonObject { ["word"] = x.First, ["tag"] = x.Second }).ToArray()),
        QaAnswer a => new JsonObject { ["answer"] = a.Text, ["score"] = Math.Round(a.Score, 6), ["probability"] = Math.Round(a.Probability, 6), ["start"] = a.Start, ["end"] = a.End },
        EmbeddingPrediction e => new JsonArray(e.Vector.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray()),
        _ => throw new InvalidOperationException($"no JSON for a {p.GetType().Name}"),
    };

    /// <summary>One label of a classifier's answer, TEI's {"score", "label"}; a multi-label classifier's also says
    /// whether the label is predicted (its probability reaches the model's threshold).</summary>
    static JsonObject Scored(ClassificationPrediction c, string label, double probability)
    {
        var o = new JsonObject { ["score"] = Math.Round(probability, 6), ["label"] = label };
        if (c.MultiLabel) o["predicted"] = c.Labels.Contains(label);
        return o;
    }

    /// <summary>Stops taking requests and finishes the queued ones.</summary>
    public async ValueTask DisposeAsync()
    {
        await queue.DisposeAsync();
        Model.Dispose();
    }
}
