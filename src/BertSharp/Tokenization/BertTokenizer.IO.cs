using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Unicode;

namespace BertSharp.Tokenization;

// Reading and writing the HuggingFace files: vocab.txt (one token per line, id = line number - 1) and
// tokenizer_config.json.
public sealed partial class BertTokenizer
{
    public const string VocabFileName = "vocab.txt";
    public const string ConfigFileName = "tokenizer_config.json";

    /// <summary>Loads <c>vocab.txt</c> and, when present, <c>tokenizer_config.json</c> from a HuggingFace model folder.</summary>
    public static BertTokenizer FromFolder(string modelDir)
    {
        ArgumentNullException.ThrowIfNull(modelDir);
        if (!Directory.Exists(modelDir))
            throw new BertSharpException($"{modelDir}: model folder not found");
        string vocabPath = Path.Combine(modelDir, VocabFileName);
        if (!File.Exists(vocabPath))
            throw new BertSharpException($"{vocabPath}: file not found (a BERT model folder needs vocab.txt, one WordPiece token per line)");
        string configPath = Path.Combine(modelDir, ConfigFileName);
        var options = File.Exists(configPath) ? ReadConfig(configPath) : new BertTokenizerOptions();
        return FromVocabFile(vocabPath, options);
    }

    /// <summary>Loads a vocab.txt with the given settings (HF defaults: lower-case, strip accents when lower-casing, split CJK).</summary>
    public static BertTokenizer FromVocabFile(string vocabPath, bool lowerCase = true, bool? stripAccents = null, bool tokenizeChineseChars = true) =>
        FromVocabFile(vocabPath, new BertTokenizerOptions
        {
            LowerCase = lowerCase, StripAccents = stripAccents, TokenizeChineseChars = tokenizeChineseChars,
        });

    public static BertTokenizer FromVocabFile(string vocabPath, BertTokenizerOptions options)
    {
        ArgumentNullException.ThrowIfNull(vocabPath);
        ArgumentNullException.ThrowIfNull(options);
        var (tokens, lines) = ReadVocab(vocabPath);
        return new BertTokenizer(tokens, options, vocabPath, lines);
    }

    /// <summary>
    /// Reads vocab.txt as Python's text mode does: UTF-8, lines end at \n, \r\n or \r, the line break is not part of
    /// the token (other whitespace is). A leading UTF-8 byte-order mark is ignored.
    /// </summary>
    internal static (List<string> Tokens, int[] LineNumbers) ReadVocab(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (FileNotFoundException) { throw new BertSharpException($"{path}: file not found"); }
        catch (DirectoryNotFoundException) { throw new BertSharpException($"{path}: file not found"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BertSharpException($"{path}: cannot read: {e.Message}", e);
        }
        ReadOnlySpan<byte> data = bytes;
        if (data.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) data = data[3..];
        if (data.IsEmpty) throw new BertSharpException($"{path}: empty file (expected one WordPiece token per line)");

        var tokens = new List<string>(32 * 1024);
        var lines = new List<int>(32 * 1024);
        int line = 0;
        int pos = 0;
        while (pos < data.Length)
        {
            line++;
            var rest = data[pos..];
            int eol = rest.IndexOfAny((byte)'\n', (byte)'\r');
            ReadOnlySpan<byte> content;
            if (eol < 0) { content = rest; pos = data.Length; }
            else
            {
                content = rest[..eol];
                pos += eol + 1;
                if (rest[eol] == '\r' && pos < data.Length && data[pos] == '\n') pos++;
            }
            if (!Utf8.IsValid(content))
                throw new BertSharpException($"{path}:{line}: invalid UTF-8");
            tokens.Add(Encoding.UTF8.GetString(content));
            lines.Add(line);
        }
        return (tokens, lines.ToArray());
    }

    /// <summary>Reads the tokenizer settings of a HuggingFace tokenizer_config.json; unknown keys are ignored.</summary>
    public static BertTokenizerOptions ReadConfig(string path)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path, Encoding.UTF8)); }
        catch (JsonException e) { throw new BertSharpException($"{path}: invalid JSON: {e.Message}", e); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BertSharpException($"{path}: cannot read: {e.Message}", e);
        }
        if (root is not JsonObject obj) throw new BertSharpException($"{path}: expected a JSON object");

        var o = new BertTokenizerOptions();
        o = o with
        {
            LowerCase = GetBool(obj, "do_lower_case", path) ?? o.LowerCase,
            StripAccents = GetBool(obj, "strip_accents", path),
            TokenizeChineseChars = GetBool(obj, "tokenize_chinese_chars", path) ?? o.TokenizeChineseChars,
            ModelMaxLength = GetMaxLength(obj, path),
            UnkToken = GetToken(obj, "unk_token", path) ?? o.UnkToken,
            SepToken = GetToken(obj, "sep_token", path) ?? o.SepToken,
            PadToken = GetToken(obj, "pad_token", path) ?? o.PadToken,
            ClsToken = GetToken(obj, "cls_token", path) ?? o.ClsToken,
            MaskToken = GetToken(obj, "mask_token", path) ?? o.MaskToken,
        };
        return o;
    }

    private static bool? GetBool(JsonObject obj, string key, string path)
    {
        if (!obj.TryGetPropertyValue(key, out var node) || node is null) return null;
        if (node is JsonValue v && v.TryGetValue(out bool b)) return b;
        throw new BertSharpException($"{path}: '{key}' must be true, false or null, not {node.ToJsonString()}");
    }

    private static int? GetMaxLength(JsonObject obj, string path)
    {
        const string key = "model_max_length";
        if (!obj.TryGetPropertyValue(key, out var node) || node is null) return null;
        if (node is JsonValue v)
        {
            // HF writes 1e30 ("VERY_LARGE_INTEGER") when the model sets no limit.
            if (v.TryGetValue(out double d) && d >= 1 && Math.Floor(d) == d)
                return d > int.MaxValue ? null : (int)d;
        }
        throw new BertSharpException($"{path}: '{key}' must be a positive integer, not {node.ToJsonString()}");
    }

    private static string? GetToken(JsonObject obj, string key, string path)
    {
        if (!obj.TryGetPropertyValue(key, out var node) || node is null) return null;
        if (node is JsonValue v && v.TryGetValue(out string? s)) return s;
        // AddedToken serialized as {"__type": "AddedToken", "content": "[MASK]", ...}
        if (node is JsonObject t && t.TryGetPropertyValue("content", out var c) && c is JsonValue cv && cv.TryGetValue(out string? content))
            return content;
        throw new BertSharpException($"{path}: '{key}' must be a string, not {node.ToJsonString()}");
    }

    /// <summary>
    /// Writes vocab.txt (one token per line, '\n') and tokenizer_config.json (HF BertTokenizer fields) into
    /// <paramref name="modelDir"/>, creating it if needed, each atomically (a crash leaves the old file or the
    /// new one, never a truncated one). Other files in the folder are left alone.
    /// </summary>
    public void Save(string modelDir)
    {
        ArgumentNullException.ThrowIfNull(modelDir);
        Directory.CreateDirectory(modelDir);
        var sb = new StringBuilder(_vocab.Length * 8);
        foreach (string token in _vocab) sb.Append(token).Append('\n');
        AtomicFile.WriteAllText(Path.Combine(modelDir, VocabFileName), sb.ToString());

        var config = new JsonObject
        {
            ["tokenizer_class"] = "BertTokenizer",
            ["do_lower_case"] = Options.LowerCase,
            ["strip_accents"] = Options.StripAccents is bool strip ? JsonValue.Create(strip) : null,
            ["tokenize_chinese_chars"] = Options.TokenizeChineseChars,
            ["do_basic_tokenize"] = true,
            ["never_split"] = null,
        };
        if (Options.ModelMaxLength is int maxLength) config["model_max_length"] = maxLength;
        config["unk_token"] = Options.UnkToken;
        config["sep_token"] = Options.SepToken;
        config["pad_token"] = Options.PadToken;
        config["cls_token"] = Options.ClsToken;
        config["mask_token"] = Options.MaskToken;
        string json = config.ToJsonString(new JsonSerializerOptions
        {
            WriteIndented = true,
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        });
        AtomicFile.WriteAllText(Path.Combine(modelDir, ConfigFileName), json + "\n");
    }
}
