using System.Text;
using System.Text.Json;
using BertSharp.Tokenization;

namespace BertSharp.Tests.Tokenization;

/// <summary>Loading and saving vocab.txt / tokenizer_config.json, and the errors for bad files.</summary>
public sealed class VocabFileTests : IDisposable
{
    private readonly string _dir = TestPaths.TempDir("vocab");

    public VocabFileTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private string WriteVocab(byte[] bytes, string name = "vocab.txt")
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private string WriteVocab(string text, string name = "vocab.txt") => WriteVocab(Encoding.UTF8.GetBytes(text), name);

    private static string Lines(IEnumerable<string> tokens) => string.Join("\n", tokens) + "\n";

    [Fact]
    public void MissingFolderAndMissingVocab()
    {
        var e1 = Assert.Throws<BertSharpException>(() => BertTokenizer.FromFolder(Path.Combine(_dir, "nope")));
        Assert.Contains("model folder not found", e1.Message);
        var e2 = Assert.Throws<BertSharpException>(() => BertTokenizer.FromFolder(_dir));
        Assert.Contains("vocab.txt", e2.Message);
        Assert.Contains("file not found", e2.Message);
        var e3 = Assert.Throws<BertSharpException>(() => BertTokenizer.FromVocabFile(Path.Combine(_dir, "missing.txt")));
        Assert.Contains("missing.txt: file not found", e3.Message);
    }

    [Fact]
    public void EmptyFile()
    {
        string path = WriteVocab("");
        var e = Assert.Throws<BertSharpException>(() => BertTokenizer.FromVocabFile(path));
        Assert.Equal($"{path}: empty file (expected one WordPiece token per line)", e.Message);
    }

    [Theory]
    [InlineData("[PAD]")]
    [InlineData("[UNK]")]
    [InlineData("[CLS]")]
    [InlineData("[SEP]")]
    [InlineData("[MASK]")]
    public void MissingSpecialToken(string special)
    {
        string path = WriteVocab(Lines(SmallVocab.With().Where(t => t != special)));
        var e = Assert.Throws<BertSharpException>(() => BertTokenizer.FromVocabFile(path));
        Assert.StartsWith(path + ":", e.Message);
        Assert.Contains($"no {special} token", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void DuplicateTokenNamesBothLines()
    {
        var tokens = SmallVocab.With();
        tokens.Insert(10, "hello"); // line 11; the original "hello" comes later
        string path = WriteVocab(Lines(tokens));
        int second = tokens.LastIndexOf("hello") + 1;
        var e = Assert.Throws<BertSharpException>(() => BertTokenizer.FromVocabFile(path));
        Assert.Equal($"{path}:{second}: duplicate token 'hello' (first at line 11)", e.Message);
    }

    [Fact]
    public void InvalidUtf8NamesTheLine()
    {
        var bytes = new List<byte>(Encoding.UTF8.GetBytes(Lines(SmallVocab.With())));
        bytes.AddRange(new byte[] { (byte)'a', 0xC3, 0x28, (byte)'\n' }); // broken 2-byte sequence
        int line = SmallVocab.With().Count + 1;
        string path = WriteVocab(bytes.ToArray());
        var e = Assert.Throws<BertSharpException>(() => BertTokenizer.FromVocabFile(path));
        Assert.Equal($"{path}:{line}: invalid UTF-8", e.Message);
    }

    [Fact]
    public void CrLfBomAndMissingFinalNewlineAreAccepted()
    {
        var tokens = SmallVocab.With("naïve");
        var bytes = new byte[] { 0xEF, 0xBB, 0xBF }.Concat(Encoding.UTF8.GetBytes(string.Join("\r\n", tokens))).ToArray();
        var tok = BertTokenizer.FromVocabFile(WriteVocab(bytes), lowerCase: true, stripAccents: false);
        Assert.Equal(tokens, tok.Vocabulary);
        Assert.Equal(new[] { "naïve" }, tok.Tokenize("NAÏVE"));
    }

    [Fact]
    public void InMemoryVocabularyErrors()
    {
        var dup = SmallVocab.With();
        dup.Add("hello");
        var e = Assert.Throws<BertSharpException>(() => new BertTokenizer(dup));
        Assert.Contains("duplicate token 'hello'", e.Message);
        Assert.Throws<BertSharpException>(() => new BertTokenizer(new[] { "a", "b" }));
        Assert.Throws<BertSharpException>(() => new BertTokenizer(Array.Empty<string>()));
        Assert.Throws<BertSharpException>(() => new BertTokenizer(SmallVocab.With("bad\ntoken")));
    }

    [Fact]
    public void BadTokenizerConfig()
    {
        WriteVocab(Lines(SmallVocab.With()));
        string config = Path.Combine(_dir, "tokenizer_config.json");

        File.WriteAllText(config, "{ \"do_lower_case\": tru");
        var e1 = Assert.Throws<BertSharpException>(() => BertTokenizer.FromFolder(_dir));
        Assert.StartsWith($"{config}: invalid JSON", e1.Message);

        File.WriteAllText(config, "{ \"do_lower_case\": \"yes\" }");
        var e2 = Assert.Throws<BertSharpException>(() => BertTokenizer.FromFolder(_dir));
        Assert.Equal($"{config}: 'do_lower_case' must be true, false or null, not \"yes\"", e2.Message);

        File.WriteAllText(config, "{ \"model_max_length\": -3 }");
        var e3 = Assert.Throws<BertSharpException>(() => BertTokenizer.FromFolder(_dir));
        Assert.Contains("'model_max_length' must be a positive integer", e3.Message);

        File.WriteAllText(config, "{ \"mask_token\": \"<mask>\" }");
        var e4 = Assert.Throws<BertSharpException>(() => BertTokenizer.FromFolder(_dir));
        Assert.Contains("no <mask> token", e4.Message);
    }

    [Fact]
    public void HfConfigVariantsAreRead()
    {
        WriteVocab(Lines(SmallVocab.With()));
        File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"), """
            {
              "do_lower_case": false, "strip_accents": true, "tokenize_chinese_chars": false,
              "model_max_length": 1000000000000000019884624838656,
              "mask_token": {"__type": "AddedToken", "content": "[MASK]", "lstrip": false, "normalized": true},
              "tokenizer_class": "BertTokenizer", "some_future_key": [1, 2]
            }
            """);
        var tok = BertTokenizer.FromFolder(_dir);
        Assert.False(tok.Options.LowerCase);
        Assert.True(tok.Options.StripAccents);
        Assert.False(tok.Options.TokenizeChineseChars);
        Assert.Null(tok.Options.ModelMaxLength);
        Assert.Equal(512, tok.DefaultMaxLength);
        Assert.Equal(4, tok.MaskId);
    }

    [Fact]
    public void SaveWritesHfFilesAndRoundTrips()
    {
        var options = new BertTokenizerOptions { LowerCase = true, StripAccents = false, ModelMaxLength = 256 };
        var tok = new BertTokenizer(SmallVocab.With("naïve", "中"), options);
        string outDir = Path.Combine(_dir, "model");
        tok.Save(outDir);

        string vocabText = File.ReadAllText(Path.Combine(outDir, "vocab.txt"));
        Assert.Equal(Lines(tok.Vocabulary), vocabText);
        Assert.DoesNotContain('\r', vocabText);

        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "tokenizer_config.json")));
        var root = config.RootElement;
        Assert.Equal("BertTokenizer", root.GetProperty("tokenizer_class").GetString());
        Assert.True(root.GetProperty("do_lower_case").GetBoolean());
        Assert.False(root.GetProperty("strip_accents").GetBoolean());
        Assert.True(root.GetProperty("tokenize_chinese_chars").GetBoolean());
        Assert.Equal(256, root.GetProperty("model_max_length").GetInt32());
        Assert.Equal("[MASK]", root.GetProperty("mask_token").GetString());
        Assert.Equal("[UNK]", root.GetProperty("unk_token").GetString());

        var back = BertTokenizer.FromFolder(outDir);
        Assert.Equal(tok.Vocabulary, back.Vocabulary);
        Assert.Equal(options, back.Options);
        string text = "Naïve 中 [MASK] hello!";
        Assert.Equal(tok.Encode(text), back.Encode(text));
    }

    [Fact]
    public void SaveWithUnsetStripAccentsWritesNull()
    {
        var tok = new BertTokenizer(SmallVocab.With());
        tok.Save(_dir);
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "tokenizer_config.json")));
        Assert.Equal(JsonValueKind.Null, config.RootElement.GetProperty("strip_accents").ValueKind);
        Assert.False(config.RootElement.TryGetProperty("model_max_length", out _));
    }
}
