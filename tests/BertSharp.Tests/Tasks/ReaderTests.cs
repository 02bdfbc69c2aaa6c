using System.IO.Compression;
using System.Text;
using BertSharp.Data;
using BertSharp.Tasks;
using BertSharp.Tasks.Classification;
using BertSharp.Tasks.Similarity;
using BertSharp.Tasks.Tagging;

namespace BertSharp.Tests.Tasks;

public class TableReaderTests
{
    [Fact]
    public void CsvQuotesHoldCommasQuotesAndLineBreaks()
    {
        using var d = new TempDir();
        var path = d.Write("t.csv", "text,label\r\n\"a, b\",x\n\"say \"\"hi\"\"\nthere\",y\nplain,z\n");
        using var t = new TableReader(path, TableReader.DetectFormat(path));
        var rows = t.Records().ToList();
        Assert.Equal(TableFormat.Csv, t.Format);
        Assert.Equal(["text", "label"], t.Header!);
        Assert.Equal(3, rows.Count);
        Assert.Equal(["a, b", "x"], rows[0].Fields!);
        Assert.Equal(["say \"hi\"\nthere", "y"], rows[1].Fields!);
        Assert.Equal(3, rows[1].Line);
        Assert.Equal(5, rows[2].Line);
    }

    [Fact]
    public void TsvIsNotQuoteAwareAndKeepsTabs()
    {
        using var d = new TempDir();
        var path = d.Write("t.tsv", "sentence\tlabel\n\"quoted\tstart\t1\n");
        using var t = new TableReader(path, TableFormat.Tsv);
        var r = t.Records().Single();
        Assert.Equal(["\"quoted", "start", "1"], r.Fields!);
    }

    [Fact]
    public void AnUnclosedQuoteNamesItsLine()
    {
        using var d = new TempDir();
        var path = d.Write("t.csv", "a,b\n1,2\n\"open,3\n");
        using var t = new TableReader(path, TableFormat.Csv);
        var e = Assert.Throws<BertSharpException>(() => t.Records().ToList());
        Assert.Equal($"{path}:3: a quoted field is not closed before the end of the file", e.Message);
    }

    [Fact]
    public void ColumnsByNameOrIndex()
    {
        using var d = new TempDir();
        var path = d.Write("t.tsv", "id\tsentence\tlabel\n1\thello\tpos\n");
        using var t = new TableReader(path, TableFormat.Tsv);
        Assert.Equal(1, t.ResolveColumn(ColumnRef.Parse("sentence"), "--text-column"));
        Assert.Equal(2, t.ResolveColumn(ColumnRef.Parse("2"), "--label-column"));
        var e = Assert.Throws<BertSharpException>(() => t.ResolveColumn(ColumnRef.Parse("nope"), "--text-column"));
        Assert.Contains($"{path}:1: --text-column 'nope': no such column", e.Message);
    }
}

public class ClassificationReaderTests
{
    [Fact]
    public void SnliJsonlDropsAndCountsDashLabels()
    {
        using var d = new TempDir();
        var lines = new[]
        {
            """{"gold_label": "entailment", "sentence1": "A man.", "sentence2": "A person.", "pairID": "1"}""",
            """{"gold_label": "-", "sentence1": "A dog.", "sentence2": "A cat.", "pairID": "2"}""",
            "",
            """{"gold_label": "neutral", "sentence1": "Kids play.", "sentence2": "Kids play outside.", "pairID": "3"}""",
        };
        var path = d.Write("snli.jsonl.gz", string.Join("\n", lines) + "\n");
        var set = ClassificationData.Read(path, new DataFileOptions());
        Assert.Equal(2, set.Examples.Count);
        Assert.Equal(new ClassificationExample("A man.", "A person.", "entailment", $"{path}:1"), set.Examples[0]);
        Assert.Equal("neutral", set.Examples[1].Label);
        Assert.Contains(set.Notes, n => n.Contains("dropped 1 examples with gold_label '-'"));
    }

    [Fact]
    public void GlueTsvSingleSentenceAndExplicitColumns()
    {
        using var d = new TempDir();
        var path = d.Write("train.tsv", "sentence\tlabel\nit is good\t1\nit is bad\t0\n");
        var set = ClassificationData.Read(path, new DataFileOptions());
        Assert.Equal([("it is good", (string?)null, "1"), ("it is bad", null, "0")], set.Examples.Select(e => (e.Text, e.Pair, e.Label)));
        Assert.Equal(["0", "1"], ClassificationData.LabelSet(set.Examples.Select(e => e.Label)));
        Assert.Equal(["2", "10"], ClassificationData.LabelSet(["10", "2"]));   // numeric labels sort as numbers

        // no header, columns by index (CoLA's layout: source, label, mark, sentence)
        var cola = d.Write("cola.tsv", "gj04\t1\t\tOur friends won't buy this.\n");
        var c = ClassificationData.Read(cola, new DataFileOptions { NoHeader = true, TextColumn = "3", LabelColumn = "1" });
        Assert.Equal(("Our friends won't buy this.", "1"), (c.Examples[0].Text, c.Examples[0].Label));
    }

    [Fact]
    public void CsvPairWithNamedColumnsAndMissingLabelError()
    {
        using var d = new TempDir();
        var path = d.Write("pairs.csv", "q1,q2,dup\n\"What, why?\",How?,1\nA,B,\n");
        var o = new DataFileOptions { TextColumn = "q1", PairColumn = "q2", LabelColumn = "dup" };
        var e = Assert.Throws<BertSharpException>(() => ClassificationData.Read(path, o));
        Assert.Equal($"{path}:3: empty label in column 'dup'", e.Message);
        File.WriteAllText(path, "q1,q2,dup\n\"What, why?\",How?,1\n");
        Assert.Equal(("What, why?", "How?"), (ClassificationData.Read(path, o).Examples[0].Text, ClassificationData.Read(path, o).Examples[0].Pair));
    }
}

public class SimilarityReaderTests
{
    [Fact]
    public void StsbOriginalFormatIsTabSeparatedAndNotQuoteAware()
    {
        using var d = new TempDir();
        var path = d.Write("sts-dev.csv",
            "main-captions\tMSRvid\t2012test\t0001\t5.000\tA plane is taking off.\tAn air plane is taking off.\n" +
            "main-news\theadlines\t2013\t0002\t1.5\tHe said \"no.\tShe said \"yes\"\tsource1\tsource2\n");
        var set = SimilarityData.Read(path, new DataFileOptions());
        Assert.Equal(2, set.Examples.Count);
        Assert.Equal(new SimilarityExample("He said \"no.", "She said \"yes\"", 1.5, $"{path}:2"), set.Examples[1]);

        File.AppendAllText(path, "g\tf\ty\t3\tfive\ta\tb\n");
        var e = Assert.Throws<BertSharpException>(() => SimilarityData.Read(path, new DataFileOptions()));
        Assert.Equal($"{path}:3: the score 'five' is not a number", e.Message);
    }

    [Fact]
    public void GenericJsonlAndTsv()
    {
        using var d = new TempDir();
        var jsonl = d.Write("s.jsonl", """{"sentence1": "a", "sentence2": "b", "score": 4.2}""" + "\n");
        Assert.Equal(4.2, SimilarityData.Read(jsonl, new DataFileOptions()).Examples[0].Score);
        var tsv = d.Write("s.tsv", "x\ty\tsim\nhello\tworld\t0.5\n");
        var set = SimilarityData.Read(tsv, new DataFileOptions { TextColumn = "x", PairColumn = "y", LabelColumn = "sim" });
        Assert.Equal(new SimilarityExample("hello", "world", 0.5, $"{tsv}:2"), set.Examples[0]);
    }
}

public class TaggingReaderTests
{
    const string Mrg = """

        ( (S 
            (NP-SBJ (NNP Pierre) (NNP Vinken) )
            (VP (MD will) 
              (VP (VB join) (NP (-NONE- *-1) ) (NP (DT the) (NN board) )))
            (. .) ))
        ( (S (NP-SBJ (PRP He) ) (VP (VBD left) ) (. .) ))

        """;

    [Fact]
    public void MrgLeavesInOrderWithTracesDropped()
    {
        using var d = new TempDir();
        var path = d.Write("wsj_0001.mrg", Mrg);
        var set = TaggingData.Read(path, new DataFileOptions());
        Assert.Equal(2, set.Examples.Count);
        Assert.Equal(["Pierre", "Vinken", "will", "join", "the", "board", "."], set.Examples[0].Words);
        Assert.Equal(["NNP", "NNP", "MD", "VB", "DT", "NN", "."], set.Examples[0].Tags);
        Assert.Equal($"{path}:2", set.Examples[0].Source);
        Assert.Equal(["He", "left", "."], set.Examples[1].Words);
        Assert.Contains(set.Notes, n => n.Contains("dropped 1 -NONE- trace leaves"));
        Assert.False(set.HasBuiltInSplit);
    }

    [Fact]
    public void PosFilesEndSentencesAtPeriodTags()
    {
        using var d = new TempDir();
        var path = d.Write("wsj_0002.pos", "\n======================================\n\n[ Pierre/NNP Vinken/NNP ]\n,/, will/MD \n[ 1\\/2/CD ]\n./. \n\nHe/PRP left/VBD ./.\n");
        var set = TaggingData.Read(path, new DataFileOptions());
        Assert.Equal(2, set.Examples.Count);
        Assert.Equal(["Pierre", "Vinken", ",", "will", "1\\/2", "."], set.Examples[0].Words);
        Assert.Equal(["NNP", "NNP", ",", "MD", "CD", "."], set.Examples[0].Tags);
    }

    [Fact]
    public void TreebankZipIsSplitByFileNumber()
    {
        using var d = new TempDir();
        var zipPath = d.File("treebank.zip");
        using (var zip = ZipFile.Open(zipPath, ZipArchiveMode.Create))
        {
            foreach (var (name, word) in new[] { ("wsj_0001", "one"), ("wsj_0159", "two"), ("wsj_0160", "three"), ("wsj_0199", "four") })
            {
                using var w = new StreamWriter(zip.CreateEntry($"treebank/combined/{name}.mrg").Open(), new UTF8Encoding(false));
                w.Write($"( (S (NN {word}) (. .) ))\n");
            }
            using var readme = new StreamWriter(zip.CreateEntry("treebank/combined/README").Open());
            readme.Write("not a tree");
        }
        string First(DataSplit s) => string.Join(" ", TaggingData.Read(zipPath, new DataFileOptions { Split = s }).Examples.Select(e => e.Words[0]));
        Assert.Equal("one two", First(DataSplit.Train));
        Assert.Equal("three", First(DataSplit.Dev));
        Assert.Equal("four", First(DataSplit.Test));
        Assert.Equal("one two three four", First(DataSplit.All));
        Assert.True(TaggingData.Read(zipPath, new DataFileOptions { Split = DataSplit.Train }).HasBuiltInSplit);
    }

    [Fact]
    public void ConllColumnsDocstartAndTagColumn()
    {
        using var d = new TempDir();
        var path = d.Write("train.txt", "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n");
        var last = TaggingData.Read(path, new DataFileOptions());
        Assert.Equal(2, last.Examples.Count);
        Assert.Equal(["B-ORG", "O"], last.Examples[0].Tags);
        Assert.Contains(last.Notes, n => n.Contains("skipped 1 -DOCSTART- lines"));
        var chunks = TaggingData.Read(path, new DataFileOptions { TagColumn = 2 });
        Assert.Equal(["B-NP", "B-VP"], chunks.Examples[0].Tags);
        var e = Assert.Throws<BertSharpException>(() => TaggingData.Read(path, new DataFileOptions { TagColumn = 4 }));
        Assert.Equal($"{path}:3: tagColumn 4: the line has only 4 columns", e.Message);
        Assert.Equal(["tagColumn"], e.Parameters);
        Assert.Equal($"{path}:3: --tag-column 4: the line has only 4 columns", BertSharp.Cli.ParameterFlags.Message(e));
    }

    [Fact]
    public void ConllZipIsSplitIntoTrainDevAndTest()
    {
        using var d = new TempDir();
        var zipPath = d.File("chunks.zip");
        using (var zip = ZipFile.Open(zipPath, ZipArchiveMode.Create))
        {
            void Write(string name, IEnumerable<string> words)
            {
                using var w = new StreamWriter(zip.CreateEntry(name).Open(), new UTF8Encoding(false));
                foreach (var word in words) w.Write($"{word} NN B-NP\n\n");
            }
            Write("conll2000/train.txt", Enumerable.Range(1, 20).Select(i => $"w{i}"));
            Write("conll2000/test.txt", ["t1", "t2"]);
            Write("conll2000/README", []);
        }
        Assert.Equal("conll", TaggingData.DetectFormat(zipPath));
        string Words(DataSplit s) => string.Join(" ", TaggingData.Read(zipPath, new DataFileOptions { Split = s }).Examples.Select(e => e.Words[0]));
        Assert.Equal(string.Join(" ", Enumerable.Range(1, 18).Select(i => $"w{i}")), Words(DataSplit.Train));
        Assert.Equal("w19 w20", Words(DataSplit.Dev));
        Assert.Equal("t1 t2", Words(DataSplit.Test));
        Assert.Equal(22, TaggingData.Read(zipPath, new DataFileOptions()).Examples.Count);
        var train = TaggingData.Read(zipPath, new DataFileOptions { Split = DataSplit.Train });
        Assert.True(train.HasBuiltInSplit);
        Assert.Equal($"{zipPath}:conll2000/train.txt:1", train.Examples[0].Source);
    }

    [Fact]
    public void JsonlTokensAndTags()
    {
        using var d = new TempDir();
        var path = d.Write("t.jsonl", """{"tokens": ["a", "b"], "ner_tags": ["O", "B-X"]}""" + "\n" + """{"tokens": ["c"], "ner_tags": ["O", "O"]}""" + "\n");
        var e = Assert.Throws<BertSharpException>(() => TaggingData.Read(path, new DataFileOptions()));
        Assert.Equal($"{path}:2: 1 words but 2 tags", e.Message);
        File.WriteAllText(path, """{"tokens": ["a", "b"], "ner_tags": ["O", "B-X"]}""" + "\n");
        Assert.Equal(["O", "B-X"], TaggingData.Read(path, new DataFileOptions()).Examples[0].Tags);
    }
}
