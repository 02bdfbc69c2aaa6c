using BertSharp.Data;

namespace BertSharp.Tests.Data;

public class CorpusReaderTests
{
    const string WikiSample =
        " \n" +
        " = Homarus gammarus = \n" +
        " \n" +
        " Homarus gammarus is a species of <unk> lobster . It is related to H. americanus . \n" +
        " \n" +
        " = = Description = = \n" +
        " \n" +
        " It weighs 0 @.@ 7 – 2 @.@ 2 kg , and 1 in 20 @,@ 000 larvae survive . Red @-@ tipped claws . \n" +
        " \n" +
        " = = = Deeper heading = = = \n" +
        " A last paragraph . \n" +
        " \n" +
        " = Second Article = \n" +
        " \n" +
        " = = Empty section = = \n" +
        " \n" +
        " Only one sentence here . \n" +
        " \n" +
        " = Article Without Text = \n" +
        " \n";

    [Fact]
    public void WikiTextArticlesAreDocuments()
    {
        using var d = new TempDir();
        var path = d.Write("wiki.sample.tokens", WikiSample);
        var docs = CorpusReader.Read(path).ToList();
        Assert.Equal(2, docs.Count);
        Assert.Equal($"{path}:2", docs[0].Source);
        Assert.Equal(new[]
        {
            "Homarus gammarus is a species of [UNK] lobster .",
            "It is related to H. americanus .",
            "It weighs 0.7 – 2.2 kg , and 1 in 20,000 larvae survive .",
            "Red-tipped claws .",
            "A last paragraph .",
        }, docs[0].Sentences);
        Assert.Equal($"{path}:13", docs[1].Source);
        Assert.Equal(new[] { "Only one sentence here ." }, docs[1].Sentences);
    }

    [Fact]
    public void WikiTextCanKeepTheOriginalEscapes()
    {
        using var d = new TempDir();
        var path = d.Write("wiki.sample.tokens", WikiSample);
        var options = new CorpusReaderOptions { WikiTextUnescape = false, WikiTextUnknownToken = null };
        var docs = CorpusReader.ReadWikiText(path, options).ToList();
        Assert.Equal("Homarus gammarus is a species of <unk> lobster .", docs[0].Sentences[0]);
        // Left escaped, `0 @.@ 7` is no sentence end: the '.' inside '@.@' has no space after it.
        Assert.Contains("It weighs 0 @.@ 7 – 2 @.@ 2 kg , and 1 in 20 @,@ 000 larvae survive .", docs[0].Sentences);
        Assert.Contains("Red @-@ tipped claws .", docs[0].Sentences);
    }

    [Fact]
    public void WikiTextUnknownTokenBecomesOneBertUnkToken()
    {
        // Why [UNK] is the default: the BERT tokenizer keeps it as the special token; left as <unk> it would
        // become several word pieces.
        var tokenizer = BertSharp.Tokenization.BertTokenizer.FromVocabFile(Path.Combine(AppContext.BaseDirectory, "fixtures", "tiny-hf-bert", "vocab.txt"));
        string line = CorpusReader.CleanWikiText(" a <unk> . ", CorpusReaderOptions.Default);
        Assert.Equal(" a [UNK] . ", line);
        var ids = tokenizer.Encode(line);
        Assert.Equal(3, ids.Length);
        Assert.Equal(tokenizer.UnkId, ids[1]);
        Assert.True(tokenizer.Encode(" a <unk> . ").Length > 3);
    }

    [Fact]
    public void WikiTextTextBeforeTheFirstTitleIsADocument()
    {
        using var d = new TempDir();
        var path = d.Write("x.tokens", " Untitled text . More . \n = T = \n Body . \n");
        var docs = CorpusReader.Read(path).ToList();
        Assert.Equal(2, docs.Count);
        Assert.Equal($"{path}:1", docs[0].Source);
        Assert.Equal(new[] { "Untitled text .", "More ." }, docs[0].Sentences);
        Assert.Equal(new[] { "Body ." }, docs[1].Sentences);
    }

    [Fact]
    public void WikiTextLineKinds()
    {
        Assert.Equal(CorpusReader.WikiTextLine.Title, CorpusReader.ClassifyWikiTextLine(" = Title = "));
        Assert.Equal(CorpusReader.WikiTextLine.Title, CorpusReader.ClassifyWikiTextLine(" = M @-@ 82 ( Michigan highway ) = "));
        Assert.Equal(CorpusReader.WikiTextLine.Heading, CorpusReader.ClassifyWikiTextLine(" = = Section = = "));
        Assert.Equal(CorpusReader.WikiTextLine.Heading, CorpusReader.ClassifyWikiTextLine(" = = = = Deep = = = = "));
        Assert.Equal(CorpusReader.WikiTextLine.Blank, CorpusReader.ClassifyWikiTextLine(" "));
        Assert.Equal(CorpusReader.WikiTextLine.Blank, CorpusReader.ClassifyWikiTextLine(""));
        Assert.Equal(CorpusReader.WikiTextLine.Text, CorpusReader.ClassifyWikiTextLine(" x = y = z "));
        Assert.Equal(CorpusReader.WikiTextLine.Text, CorpusReader.ClassifyWikiTextLine(" 1 + 1 = 2 . "));
    }

    [Fact]
    public void WikiTextGzipCrlfAndBom()
    {
        using var d = new TempDir();
        var text = "\uFEFF = A = \r\n \r\n First . Second . \r\n = B = \r\n Third . \r\n";
        var path = d.Write("wiki.x.tokens.gz", text);
        var docs = CorpusReader.Read(path).ToList();
        Assert.Equal(new[] { "First .", "Second ." }, docs[0].Sentences);
        Assert.Equal(new[] { "Third ." }, docs[1].Sentences);
        Assert.Equal($"{path}:4", docs[1].Source);
    }

    [Fact]
    public void PlainTextBlankLinesSeparateDocuments()
    {
        using var d = new TempDir();
        var path = d.Write("corpus.txt",
            "\n\nFirst doc, line one. It has two sentences.\nLine two.\n" +
            "   \n\t\n" +
            "Second doc.\r\n" +
            "\n" +
            "Mr. Smith wrote this. Third doc.\n\n\n");
        var docs = CorpusReader.Read(path).ToList();
        Assert.Equal(3, docs.Count);
        Assert.Equal($"{path}:3", docs[0].Source);
        Assert.Equal(new[] { "First doc, line one.", "It has two sentences.", "Line two." }, docs[0].Sentences);
        Assert.Equal($"{path}:7", docs[1].Source);
        Assert.Equal(new[] { "Second doc." }, docs[1].Sentences);
        Assert.Equal($"{path}:9", docs[2].Source);
        Assert.Equal(new[] { "Mr. Smith wrote this.", "Third doc." }, docs[2].Sentences);
    }

    [Fact]
    public void PlainTextLineEndEndsASentence()
    {
        using var d = new TempDir();
        var path = d.Write("a.txt", "no full stop\nnext line\n");
        Assert.Equal(new[] { "no full stop", "next line" }, CorpusReader.Read(path).Single().Sentences);
    }

    [Fact]
    public void PlainTextInvalidUtf8NamesFileAndLine()
    {
        using var d = new TempDir();
        var path = d.WriteBytes("bad.txt", [.. "Good.\n\nAlso good.\nBad "u8, 0xC0, 0xAF, .. "here.\n"u8]);
        var e = Assert.Throws<BertSharpException>(() => CorpusReader.Read(path).ToList());
        Assert.StartsWith($"{path}:4: invalid UTF-8", e.Message);
    }

    [Fact]
    public void PlainTextNulAndControlCharactersAreWhitespace()
    {
        using var d = new TempDir();
        var path = d.Write("ctl.txt", "A\0b.\u0007C d.\n");
        Assert.Equal(new[] { "A b.", "C d." }, CorpusReader.Read(path).Single().Sentences);
    }

    [Fact]
    public void JsonLinesOneDocumentPerObject()
    {
        using var d = new TempDir();
        var path = d.Write("c.jsonl",
            "{\"id\": 1, \"text\": \"First doc. Two sentences.\"}\n" +
            "\n" +
            "{\"text\": \"Line one\\nLine two. Still two.\\r\\nThree.\"}\r\n" +
            "{\"text\": \"   \"}\n" +
            "{\"text\": \"nul\\u0000inside.\"}\n");
        var docs = CorpusReader.Read(path).ToList();
        Assert.Equal(3, docs.Count);
        Assert.Equal($"{path}:1", docs[0].Source);
        Assert.Equal(new[] { "First doc.", "Two sentences." }, docs[0].Sentences);
        Assert.Equal($"{path}:3", docs[1].Source);
        Assert.Equal(new[] { "Line one", "Line two.", "Still two.", "Three." }, docs[1].Sentences);
        Assert.Equal(new[] { "nul inside." }, docs[2].Sentences);
    }

    [Fact]
    public void JsonLinesGzipAndCustomField()
    {
        using var d = new TempDir();
        var path = d.Write("c.jsonl.gz", "{\"body\": \"Hello there. General Kenobi.\"}\n");
        var docs = CorpusReader.Read(path, options: new CorpusReaderOptions { JsonTextField = "body" }).ToList();
        Assert.Equal(new[] { "Hello there.", "General Kenobi." }, docs.Single().Sentences);
    }

    [Theory]
    [InlineData("{\"txt\": \"x\"}", "missing \"text\" field")]
    [InlineData("{\"text\": 5}", "\"text\" must be a string, got a number")]
    [InlineData("{\"text\": null}", "\"text\" must be a string, got null")]
    [InlineData("{\"text\": [\"a\"]}", "\"text\" must be a string, got an array")]
    [InlineData("[1, 2]", "expected a JSON object with a \"text\" field, got an array")]
    [InlineData("\"just a string\"", "expected a JSON object with a \"text\" field, got a string")]
    [InlineData("{\"text\": \"unterminated}", "invalid JSON: ")]
    [InlineData("{\"text\": \"a\"} trailing", "invalid JSON: ")]
    public void JsonLinesErrorsNameFileAndLine(string badLine, string problem)
    {
        using var d = new TempDir();
        var path = d.Write("bad.jsonl", "{\"text\": \"Fine.\"}\n" + badLine + "\n");
        var e = Assert.Throws<BertSharpException>(() => CorpusReader.Read(path).ToList());
        Assert.StartsWith($"{path}:2: {problem}", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void JsonLinesInvalidUtf8NamesFileAndLine()
    {
        using var d = new TempDir();
        var path = d.WriteBytes("bad.jsonl", [.. "{\"text\": \"ok\"}\n{\"text\": \""u8, 0xFE, .. "\"}\n"u8]);
        var e = Assert.Throws<BertSharpException>(() => CorpusReader.Read(path).ToList());
        Assert.StartsWith($"{path}:2: invalid UTF-8", e.Message);
    }

    [Theory]
    [InlineData("wiki.train.tokens", CorpusFormat.WikiText)]
    [InlineData("wiki.train.tokens.gz", CorpusFormat.WikiText)]
    [InlineData("/some/dir.x/corpus.txt", CorpusFormat.PlainText)]
    [InlineData("CORPUS.TXT.GZ", CorpusFormat.PlainText)]
    [InlineData("docs.jsonl", CorpusFormat.JsonLines)]
    [InlineData("docs.jsonl.gz", CorpusFormat.JsonLines)]
    public void FormatFromName(string path, CorpusFormat expected) =>
        Assert.Equal(expected, CorpusReader.DetectFormat(path));

    [Theory]
    [InlineData("data.csv")]
    [InlineData("data.gz")]
    [InlineData("README")]
    public void UnknownNameAsksForAnExplicitFormat(string path)
    {
        var e = Assert.Throws<BertSharpException>(() => CorpusReader.DetectFormat(path));
        Assert.StartsWith($"{path}: cannot tell the corpus format", e.Message);
    }

    [Fact]
    public void ExplicitFormatOverridesTheName()
    {
        using var d = new TempDir();
        var path = d.Write("corpus.dat", "{\"text\": \"One. Two.\"}\n");
        Assert.StartsWith("{\"text\"", CorpusReader.Read(path, CorpusFormat.PlainText).Single().Sentences[0]);
        Assert.Equal(new[] { "One.", "Two." }, CorpusReader.Read(path, CorpusFormat.JsonLines).Single().Sentences);
        Assert.Throws<BertSharpException>(() => CorpusReader.Read(path));
    }

    [Theory]
    [InlineData("wikitext", CorpusFormat.WikiText)]
    [InlineData("TEXT", CorpusFormat.PlainText)]
    [InlineData("txt", CorpusFormat.PlainText)]
    [InlineData("jsonl", CorpusFormat.JsonLines)]
    public void ParsesFormatNames(string name, CorpusFormat expected)
    {
        Assert.True(CorpusReader.TryParseFormat(name, out var f));
        Assert.Equal(expected, f);
    }

    [Fact]
    public void UnknownFormatNameIsRejected() => Assert.False(CorpusReader.TryParseFormat("csv", out _));

    [Fact]
    public void MissingFileFailsAtTheCall()
    {
        using var d = new TempDir();
        var path = d.File("missing.txt");
        var e = Assert.Throws<BertSharpException>(() => CorpusReader.Read(path));
        Assert.Equal($"{path}: file not found", e.Message);
    }

    [Fact]
    public void ReadingIsLazyAndClosesTheFile()
    {
        using var d = new TempDir();
        var path = d.Write("a.txt", "A.\n\nB.\n\nC.\n");
        var docs = CorpusReader.Read(path);
        using (var e = docs.GetEnumerator())
        {
            Assert.True(e.MoveNext());
            Assert.Equal("A.", e.Current.Sentences[0]);
        }
        File.Delete(path);   // the abandoned enumeration released the file (matters on Windows)
        Assert.False(File.Exists(path));
    }
}
