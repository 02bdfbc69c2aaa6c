using System.Text.Json;
using BertSharp.Tokenization;

namespace BertSharp.Tests.Tokenization;

/// <summary>
/// Parity with HuggingFace's slow BertTokenizer (transformers 4.30.2) on bert-base-uncased:
/// fixtures/tokenizer/bert-base-uncased-cases.json (26 texts + 2 pairs, see its README).
/// </summary>
public class HfParityTests
{
    private const string Vocab = "vocab/bert-base-uncased/vocab.txt";

    private static readonly Lazy<JsonElement> Cases = new(() =>
        JsonDocument.Parse(File.ReadAllText(TokenizerTestData.CasesPath)).RootElement);

    private static readonly Lazy<BertTokenizer> Tokenizer = new(() =>
        BertTokenizer.FromVocabFile(TokenizerTestData.BertBaseUncasedVocab!));

    public static TheoryData<string> CaseNames()
    {
        var data = new TheoryData<string>();
        foreach (var c in Cases.Value.GetProperty("cases").EnumerateArray()) data.Add(c.GetProperty("name").GetString()!);
        return data;
    }

    public static TheoryData<string> PairNames()
    {
        var data = new TheoryData<string>();
        foreach (var c in Cases.Value.GetProperty("pairs").EnumerateArray()) data.Add(c.GetProperty("name").GetString()!);
        return data;
    }

    private static JsonElement Find(string section, string name) =>
        Cases.Value.GetProperty(section).EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

    private static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
    private static string[] Strings(JsonElement e) => e.EnumerateArray().Select(x => x.GetString()!).ToArray();

    [Fact]
    public void FixtureHas26CasesAnd2Pairs()
    {
        Assert.Equal(26, Cases.Value.GetProperty("cases").GetArrayLength());
        Assert.Equal(2, Cases.Value.GetProperty("pairs").GetArrayLength());
    }

    [DataFact(Vocab)]
    public void VocabularyMatchesFixture()
    {
        var tok = Tokenizer.Value;
        Assert.Equal(Cases.Value.GetProperty("vocab_size").GetInt32(), tok.VocabSize);
        var special = Cases.Value.GetProperty("special_ids");
        Assert.Equal(special.GetProperty("[PAD]").GetInt32(), tok.PadId);
        Assert.Equal(special.GetProperty("[UNK]").GetInt32(), tok.UnkId);
        Assert.Equal(special.GetProperty("[CLS]").GetInt32(), tok.ClsId);
        Assert.Equal(special.GetProperty("[SEP]").GetInt32(), tok.SepId);
        Assert.Equal(special.GetProperty("[MASK]").GetInt32(), tok.MaskId);
        Assert.Equal(Cases.Value.GetProperty("max_input_chars_per_word").GetInt32(), tok.Options.MaxInputCharsPerWord);
    }

    [DataTheory(Vocab)]
    [MemberData(nameof(CaseNames))]
    public void SingleText(string name)
    {
        var c = Find("cases", name);
        string text = c.GetProperty("text").GetString()!;
        var tok = Tokenizer.Value;

        Assert.Equal(Strings(c.GetProperty("tokens")), tok.Tokenize(text));
        Assert.Equal(Ints(c.GetProperty("ids")), tok.Encode(text));

        var enc = tok.Encode(text, null);
        var expected = Ints(c.GetProperty("ids_with_special"));
        Assert.Equal(expected, enc.InputIds);
        Assert.Equal(new int[expected.Length], enc.TokenTypeIds);
        Assert.All(enc.AttentionMask, m => Assert.Equal(1, m));
        Assert.Equal(expected.Select(tok.IdToToken), enc.Tokens);

        // offsets agree with the plain tokenization
        Assert.Equal(Ints(c.GetProperty("ids")), tok.TokenizeWithOffsets(text).Select(t => t.Id));
        OffsetTests.AssertSpansMatchText(tok, text);
    }

    [DataTheory(Vocab)]
    [MemberData(nameof(PairNames))]
    public void Pair(string name)
    {
        var c = Find("pairs", name);
        var enc = Tokenizer.Value.Encode(c.GetProperty("text_a").GetString()!, c.GetProperty("text_b").GetString());
        Assert.Equal(Ints(c.GetProperty("input_ids")), enc.InputIds);
        Assert.Equal(Ints(c.GetProperty("token_type_ids")), enc.TokenTypeIds);
        Assert.Equal(Strings(c.GetProperty("tokens")), enc.Tokens);
    }
}
