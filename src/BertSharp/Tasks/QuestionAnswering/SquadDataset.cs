using System.Text.Json;

namespace BertSharp.Tasks.QuestionAnswering;

/// <summary>One reference answer: its text and the character offset where it starts in the context (UTF-16 units).</summary>
public sealed record SquadAnswer(string Text, int Start)
{
    public int End => Start + Text.Length;
}

/// <summary>
/// One SQuAD question with its context. <see cref="Answers"/> is empty for an unanswerable (v2.0
/// <c>is_impossible</c>) question, whose <see cref="PlausibleAnswers"/> may hold the distractors the annotators
/// marked; and for a question read without answers (prediction input).
/// </summary>
public sealed record SquadExample(
    string Id,
    string Question,
    string Context,
    IReadOnlyList<SquadAnswer> Answers,
    bool IsImpossible = false,
    IReadOnlyList<SquadAnswer>? PlausibleAnswers = null,
    int Article = 0,
    int Paragraph = 0)
{
    public bool HasAnswer => Answers.Count > 0;
}

/// <summary>An article of a SQuAD file: its title and the range of its questions in <see cref="SquadDataset.Examples"/>.</summary>
public sealed record SquadArticle(string Title, int FirstExample, int ExampleCount, int Paragraphs);

/// <summary>
/// A SQuAD v1.1 or v2.0 file (<c>{"version", "data": [{"title", "paragraphs": [{"context", "qas": [{"id",
/// "question", "answers": [{"text", "answer_start"}], "is_impossible", "plausible_answers"}]}]}]}</c>), read
/// strictly: every answer_start must point at its answer text in the context, ids must be unique, contexts
/// and questions non-empty. Errors name the file, the JSON path and the question id. It is the list of its
/// questions (<see cref="Examples"/>), so it can be scored as one.
/// </summary>
public sealed class SquadDataset : IReadOnlyList<SquadExample>
{
    public SquadDataset(string source, string? version, IReadOnlyList<SquadArticle> articles, IReadOnlyList<SquadExample> examples)
    {
        Source = source;
        Version = version;
        Articles = articles;
        Examples = examples;
    }

    /// <summary>The file it was read from (for messages).</summary>
    public string Source { get; }
    /// <summary>The file's "version" field ("1.1", "v2.0"), if any.</summary>
    public string? Version { get; }
    public IReadOnlyList<SquadArticle> Articles { get; }
    public IReadOnlyList<SquadExample> Examples { get; }

    public int Count => Examples.Count;
    public SquadExample this[int index] => Examples[index];
    public IEnumerator<SquadExample> GetEnumerator() => Examples.GetEnumerator();
    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Whether some question is unanswerable (SQuAD v2.0 style).</summary>
    public bool HasUnanswerable => Examples.Any(e => e.IsImpossible);

    /// <summary>Whether the official v2.0 scoring applies: a "v2…" version field or an unanswerable question.</summary>
    public bool IsVersion2 => HasUnanswerable || (Version?.TrimStart('v', 'V').StartsWith('2') ?? false);

    public static SquadDataset Load(string path)
    {
        if (Directory.Exists(path)) throw new BertSharpException($"{path}: is a folder; expected a SQuAD JSON file");
        if (!File.Exists(path)) throw new BertSharpException($"{path}: file not found");
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BertSharpException($"{path}: cannot read: {e.Message}", e);
        }
        return Parse(text, path);
    }

    /// <summary>Parses SQuAD JSON text; <paramref name="source"/> names it in error messages.</summary>
    public static SquadDataset Parse(string json, string source = "SQuAD data")
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 64 }); }
        catch (JsonException e)
        {
            throw new BertSharpException($"{source}: not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}): {FirstLine(e.Message)}");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array)
                throw new BertSharpException($"{source}: not a SQuAD file: expected a JSON object with a \"data\" list of articles, found {Describe(root)}");
            string? version = root.TryGetProperty("version", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

            var articles = new List<SquadArticle>();
            var examples = new List<SquadExample>();
            var ids = new Dictionary<string, string>(StringComparer.Ordinal);
            int a = 0;
            foreach (var article in data.EnumerateArray())
            {
                string where = $"{source}: data[{a}]";
                if (article.ValueKind != JsonValueKind.Object || !article.TryGetProperty("paragraphs", out var paragraphs) || paragraphs.ValueKind != JsonValueKind.Array)
                    throw new BertSharpException($"{where}: not a SQuAD article: expected an object with a \"paragraphs\" list, found {Describe(article)}");
                string title = article.TryGetProperty("title", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : $"article {a}";
                int first = examples.Count, p = 0;
                foreach (var paragraph in paragraphs.EnumerateArray())
                {
                    string pwhere = $"{where}.paragraphs[{p}]";
                    if (paragraph.ValueKind != JsonValueKind.Object)
                        throw new BertSharpException($"{pwhere}: expected an object with \"context\" and \"qas\", found {Describe(paragraph)}");
                    string context = RequireString(paragraph, "context", pwhere);
                    if (string.IsNullOrWhiteSpace(context)) throw new BertSharpException($"{pwhere}: the context is empty");
                    if (!paragraph.TryGetProperty("qas", out var qas) || qas.ValueKind != JsonValueKind.Array)
                        throw new BertSharpException($"{pwhere}: expected a \"qas\" list of questions");
                    int q = 0;
                    foreach (var qa in qas.EnumerateArray())
                    {
                        examples.Add(ReadQuestion(qa, context, $"{pwhere}.qas[{q}]", a, p, ids));
                        q++;
                    }
                    p++;
                }
                articles.Add(new SquadArticle(title, first, examples.Count - first, p));
                a++;
            }
            if (examples.Count == 0) throw new BertSharpException($"{source}: holds no questions");
            return new SquadDataset(source, version, articles, examples);
        }
    }

    static SquadExample ReadQuestion(JsonElement qa, string context, string where, int article, int paragraph, Dictionary<string, string> ids)
    {
        if (qa.ValueKind != JsonValueKind.Object)
            throw new BertSharpException($"{where}: expected a question object, found {Describe(qa)}");
        if (!qa.TryGetProperty("id", out var idNode) || idNode.ValueKind is not (JsonValueKind.String or JsonValueKind.Number))
            throw new BertSharpException($"{where}: the question has no \"id\"");
        string id = idNode.ValueKind == JsonValueKind.String ? idNode.GetString()! : idNode.GetRawText();
        if (ids.TryGetValue(id, out var firstWhere))
            throw new BertSharpException($"{where}: question id {id} appears twice (first at {firstWhere})");
        ids[id] = where;
        string qwhere = $"{where} (question {id})";
        string question = RequireString(qa, "question", qwhere);
        if (string.IsNullOrWhiteSpace(question)) throw new BertSharpException($"{qwhere}: the question is empty");
        bool impossible = false;
        if (qa.TryGetProperty("is_impossible", out var imp))
        {
            if (imp.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                throw new BertSharpException($"{qwhere}: \"is_impossible\" must be true or false, found {Describe(imp)}");
            impossible = imp.GetBoolean();
        }
        var answers = ReadAnswers(qa, "answers", context, qwhere);
        var plausible = qa.TryGetProperty("plausible_answers", out _) ? ReadAnswers(qa, "plausible_answers", context, qwhere) : null;
        if (impossible && answers.Count > 0)
            throw new BertSharpException($"{qwhere}: is_impossible is true but the question has {answers.Count} answer(s)");
        return new SquadExample(id, question, context, answers, impossible, plausible, article, paragraph);
    }

    static List<SquadAnswer> ReadAnswers(JsonElement qa, string field, string context, string where)
    {
        var list = new List<SquadAnswer>();
        if (!qa.TryGetProperty(field, out var answers) || answers.ValueKind == JsonValueKind.Null) return list;
        if (answers.ValueKind != JsonValueKind.Array)
            throw new BertSharpException($"{where}: \"{field}\" must be a list, found {Describe(answers)}");
        int i = 0;
        foreach (var ans in answers.EnumerateArray())
        {
            string awhere = $"{where}: {field}[{i}]";
            if (ans.ValueKind != JsonValueKind.Object)
                throw new BertSharpException($"{awhere}: expected {{\"text\", \"answer_start\"}}, found {Describe(ans)}");
            string text = RequireString(ans, "text", awhere);
            if (text.Length == 0) throw new BertSharpException($"{awhere}: the answer text is empty");
            if (!ans.TryGetProperty("answer_start", out var s) || s.ValueKind != JsonValueKind.Number || !s.TryGetInt32(out int start))
                throw new BertSharpException($"{awhere}: \"answer_start\" must be an integer character offset");
            if (start < 0 || start >= context.Length)
                throw new BertSharpException($"{awhere}: answer_start {start} is beyond the context ({context.Length} characters)");
            if (start + text.Length > context.Length || string.CompareOrdinal(context, start, text, 0, text.Length) != 0)
            {
                string found = context.Substring(start, Math.Min(text.Length, context.Length - start));
                throw new BertSharpException($"{awhere}: answer_start {start} does not point at the answer text {Quote(text)} (the context there reads {Quote(found)})");
            }
            list.Add(new SquadAnswer(text, start));
            i++;
        }
        return list;
    }

    static string RequireString(JsonElement obj, string name, string where)
    {
        if (!obj.TryGetProperty(name, out var v)) throw new BertSharpException($"{where}: missing \"{name}\"");
        if (v.ValueKind != JsonValueKind.String) throw new BertSharpException($"{where}: \"{name}\" must be a string, found {Describe(v)}");
        return v.GetString()!;
    }

    /// <summary>
    /// Splits by article, in file order: the first <paramref name="trainArticles"/> articles and the rest. This is
    /// how the measurement in docs/RESULTS.md holds out the last 10 of dev-v1.1.json's 48 articles.
    /// </summary>
    public (SquadDataset Head, SquadDataset Tail) SplitArticles(int trainArticles)
    {
        if (trainArticles < 1 || trainArticles >= Articles.Count)
            throw new BertSharpException($"{Source}: splitArticles {trainArticles} must be between 1 and {Articles.Count - 1} (the file has {Articles.Count} articles)") { Parameters = ["splitArticles"] };
        return (TakeArticles(0, trainArticles, $"{Source} [articles 1-{trainArticles}]"),
            TakeArticles(trainArticles, Articles.Count - trainArticles, $"{Source} [articles {trainArticles + 1}-{Articles.Count}]"));
    }

    SquadDataset TakeArticles(int start, int count, string source)
    {
        var arts = new List<SquadArticle>();
        var exs = new List<SquadExample>();
        for (int i = start; i < start + count; i++)
        {
            var art = Articles[i];
            arts.Add(art with { FirstExample = exs.Count });
            for (int k = 0; k < art.ExampleCount; k++) exs.Add(Examples[art.FirstExample + k]);
        }
        return new SquadDataset(source, Version, arts, exs);
    }

    /// <summary>The first <paramref name="count"/> questions (all when null); articles cut accordingly.</summary>
    public SquadDataset Take(int? count)
    {
        if (count is not int n || n >= Examples.Count) return this;
        if (n < 1) throw new BertSharpException($"{Source}: the number of questions to use must be at least 1, got {n}");
        var arts = new List<SquadArticle>();
        foreach (var art in Articles)
        {
            if (art.FirstExample >= n) break;
            arts.Add(art with { ExampleCount = Math.Min(art.ExampleCount, n - art.FirstExample) });
        }
        return new SquadDataset($"{Source} [first {n} questions]", Version, arts, Examples.Take(n).ToList());
    }

    static readonly JsonSerializerOptions Readable = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    static string Quote(string s) => JsonSerializer.Serialize(s.Length > 60 ? s[..60] + "…" : s, Readable);

    static string FirstLine(string s) => s.Split('\n')[0].Trim();

    static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object" + (e.EnumerateObject().Any() ? $" with keys {string.Join(", ", e.EnumerateObject().Take(5).Select(p => JsonSerializer.Serialize(p.Name, Readable)))}" : ""),
        JsonValueKind.Array => "a list",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };
}
