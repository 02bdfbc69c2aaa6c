using BertSharp.Search;

namespace BertSharp.Tests.Search;

public class SearchCorpusTests
{
    [Fact]
    public void Each_non_blank_line_is_a_text_with_its_line_number()
    {
        using var dir = new TempDir();
        string path = dir.Write("corpus.txt", "\uFEFFfirst line\r\n\n   \nsecond\tline\nthird");
        Assert.Equal([new CorpusText(1, "first line"), new CorpusText(4, "second line"), new CorpusText(5, "third")], SearchCorpus.Read(path));
    }

    [Fact]
    public void A_table_column_or_the_text_field_of_json_lines()
    {
        using var dir = new TempDir();
        string tsv = dir.Write("pairs.tsv", "id\tsentence\n1\tA dog runs.\n2\t\n3\tA cat sleeps.\n");
        Assert.Equal([new CorpusText(2, "A dog runs."), new CorpusText(4, "A cat sleeps.")], SearchCorpus.Read(tsv, "sentence"));
        Assert.Equal([new CorpusText(2, "1"), new CorpusText(3, "2"), new CorpusText(4, "3")], SearchCorpus.Read(tsv, "0"));
        string jsonl = dir.Write("docs.jsonl", "{\"text\": \"one\"}\n\n{\"text\": \"two\", \"id\": 2}\n");
        Assert.Equal([new CorpusText(1, "one"), new CorpusText(3, "two")], SearchCorpus.Read(jsonl));
        var e = Assert.Throws<BertSharpException>(() => SearchCorpus.Read(tsv, "body"));
        Assert.Contains("'body': no such column", e.Message);
        Assert.Equal(["textColumn"], e.Parameters);
        string missing = dir.Write("missing.jsonl", "{\"text\": \"one\"}\n{\"body\": \"two\"}\n");
        Assert.Equal($"{missing}:2: no 'text' field (the text column)", Assert.Throws<BertSharpException>(() => SearchCorpus.Read(missing)).Message);
    }

    [Fact]
    public void An_empty_corpus_is_an_error_naming_the_file()
    {
        using var dir = new TempDir();
        string empty = dir.Write("empty.txt", "");
        Assert.Equal($"{empty}: nothing to index: the file has no text", Assert.Throws<BertSharpException>(() => SearchCorpus.Read(empty)).Message);
        string blank = dir.Write("blank.txt", "\n  \n\t\n");
        Assert.Equal($"{blank}: nothing to index: the file has no text", Assert.Throws<BertSharpException>(() => SearchCorpus.Read(blank)).Message);
    }
}
