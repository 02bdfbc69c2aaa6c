using System.Text.Json;
using BertSharp.Tokenization;

namespace BertSharp.Tests.Tokenization;

/// <summary>fixtures/tiny-hf-bert: FromFolder (vocab.txt + tokenizer_config.json) reproduces reference_outputs.json inputs.</summary>
public class TinyHfBertTokenizerTests
{
    private static readonly Lazy<BertTokenizer> Tok = new(() => BertTokenizer.FromFolder(TokenizerTestData.TinyBertDir));

    private static JsonElement Inputs() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(TokenizerTestData.TinyBertDir, "reference_outputs.json")))
            .RootElement.GetProperty("inputs");

    [Fact]
    public void ConfigIsRead()
    {
        var tok = Tok.Value;
        Assert.Equal(1000, tok.VocabSize);
        Assert.True(tok.Options.LowerCase);
        Assert.Null(tok.Options.StripAccents);
        Assert.True(tok.Options.TokenizeChineseChars);
        Assert.Equal(128, tok.Options.ModelMaxLength);
        Assert.Equal(128, tok.DefaultMaxLength);
        Assert.Equal((0, 1, 2, 3, 4), (tok.PadId, tok.UnkId, tok.ClsId, tok.SepId, tok.MaskId));
    }

    [Fact]
    public void ReferenceInputsAreReproduced()
    {
        var inputs = Inputs();
        var texts = inputs.GetProperty("texts").EnumerateArray().ToArray();
        var ids = inputs.GetProperty("input_ids").EnumerateArray().ToArray();
        var types = inputs.GetProperty("token_type_ids").EnumerateArray().ToArray();
        var masks = inputs.GetProperty("attention_mask").EnumerateArray().ToArray();
        var tokens = inputs.GetProperty("tokens").EnumerateArray().ToArray();
        Assert.Equal(3, texts.Length);
        for (int row = 0; row < texts.Length; row++)
        {
            int real = masks[row].EnumerateArray().Sum(m => m.GetInt32());
            var textB = texts[row].GetProperty("text_b");
            var enc = Tok.Value.Encode(texts[row].GetProperty("text_a").GetString()!,
                textB.ValueKind == JsonValueKind.Null ? null : textB.GetString());
            Assert.Equal(ids[row].EnumerateArray().Take(real).Select(e => e.GetInt32()), enc.InputIds);
            Assert.Equal(types[row].EnumerateArray().Take(real).Select(e => e.GetInt32()), enc.TokenTypeIds);
            Assert.Equal(tokens[row].EnumerateArray().Take(real).Select(e => e.GetString()), enc.Tokens);
            Assert.Equal(Enumerable.Repeat(1, real), enc.AttentionMask);
        }
    }
}
