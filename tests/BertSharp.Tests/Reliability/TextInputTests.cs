using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using BertSharp.Checkpoints;
using BertSharp.Data;
using static BertSharp.Tests.Cli.CliRunner;

namespace BertSharp.Tests.Reliability;

/// <summary>
/// The one text-input rule (<see cref="TextLineReader.InputRule"/>) holds for `bert tokenize --file` as for the
/// corpus readers (tested in Data/): byte-order mark, CRLF, NUL bytes, empty lines, very long lines and
/// words, invalid UTF-8 with file:line, and the help states the rule wherever a text file is read.
/// </summary>
public class TextInputTests
{
    static string Write(byte[] bytes)
    {
        var path = Path.Combine(TestPaths.TempDir("text"), "in.jsonl");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    static string[] Tokens(string jsonLine) =>
        JsonDocument.Parse(jsonLine).RootElement.GetProperty("tokens").EnumerateArray().Select(x => x.GetString()!).ToArray();

    [Fact]
    public void Tokenize_file_reads_a_bom_crlf_empty_lines_and_nul_bytes_like_every_other_reader()
    {
        var text = "{\"text\": \"hello world\"}\r\n\r\n   \r\n{\"text\": \"hello\0world\"}\r\n{\"text\": \"a\tb\"}";
        var path = Write([0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(text)]);
        var (code, stdout, err) = Run("tokenize", TestPaths.TinyBert, "--file", path);
        Assert.True(code == 0, err);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Equal(new[] { "[CLS]", "hello", "world", "[SEP]" }, Tokens(lines[0]));
        Assert.Equal(Tokens(lines[0]), Tokens(lines[1]));   // the NUL byte (raw, inside the JSON string) is read as a space
        Assert.Equal(4, Tokens(lines[2]).Length);            // so is the tab
    }

    [Fact]
    public void Tokenize_file_reports_invalid_utf8_with_file_and_line()
    {
        var path = Write([.. Encoding.UTF8.GetBytes("{\"text\": \"ok\"}\n{\"text\": \"caf"), 0xE9, .. Encoding.UTF8.GetBytes("\"}\n")]);
        var (code, _, err) = Run("tokenize", TestPaths.TinyBert, "--file", path);
        Assert.Equal(1, code);
        Assert.Equal($"error: {path}:2: invalid UTF-8 (0xE9) at byte 14 of the line", err.Trim());
    }

    [Fact]
    public void Tokenize_file_refuses_a_line_over_the_limit_with_file_and_line_and_handles_long_words()
    {
        var word = new string('x', 200_000); // one "word" far longer than WordPiece's 100 characters: [UNK]
        var ok = Write(Encoding.UTF8.GetBytes($"{{\"text\": \"a {word} b\"}}\n"));
        var (code, stdout, err) = Run("tokenize", TestPaths.TinyBert, "--file", ok, "--max-length", "512");
        Assert.True(code == 0, err);
        Assert.Equal(new[] { "[CLS]", "a", "[UNK]", "b", "[SEP]" }, Tokens(stdout.Trim()));

        var tooLong = Write(Encoding.UTF8.GetBytes($"{{\"text\": \"ok\"}}\n{{\"text\": \"{new string('y', TextLineReader.DefaultMaxLineLength)}\"}}\n"));
        var bad = Run("tokenize", TestPaths.TinyBert, "--file", tooLong);
        Assert.Equal(1, bad.Code);
        Assert.Equal($"error: {tooLong}:2: line is longer than 1,000,000 characters", bad.Err.Trim());
    }

    [Fact]
    public void Qa_questions_jsonl_follows_the_same_rule()
    {
        // `predict --input` on a question-answering folder (was File.ReadLines: invalid UTF-8 silently replaced).
        var ok = Write([0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes("{\"question\": \"Who?\", \"context\": \"Ann\u0000went.\"}\r\n\r\n")]);
        var examples = BertSharp.Cli.Commands.QaCliHandlers.ReadJsonl(ok);
        Assert.Single(examples);
        Assert.Equal("1", examples[0].Id);
        var bad = Write([.. Encoding.UTF8.GetBytes("{\"question\": \"Who?\", \"context\": \"x\"}\n{\"question\": \"caf"), 0xE9, .. Encoding.UTF8.GetBytes("\", \"context\": \"x\"}\n")]);
        var e = Assert.Throws<BertSharpException>(() => BertSharp.Cli.Commands.QaCliHandlers.ReadJsonl(bad));
        Assert.Equal($"{bad}:2: invalid UTF-8 (0xE9) at byte 18 of the line", e.Message);
    }

    [Fact]
    public void Tokenize_file_that_is_missing_is_one_line()
    {
        var missing = Path.Combine(TestPaths.TempDir("text"), "nope.jsonl");
        var (code, _, err) = Run("tokenize", TestPaths.TinyBert, "--file", missing);
        Assert.Equal(1, code);
        Assert.Equal($"error: {missing}: file not found", err.Trim());
    }

    [Theory]
    [InlineData("tokenize", "--help")]
    [InlineData("pretrain", "--help")]
    [InlineData("vocab", "build", "--help")]
    [InlineData("finetune", "classify", "--help")]
    [InlineData("finetune", "similarity", "--help")]
    [InlineData("finetune", "tag", "--help")]
    [InlineData("predict", "--help")]
    [InlineData("evaluate", "--help")]
    public void The_help_states_the_text_input_rule_where_text_files_are_read(params string[] args)
    {
        var (code, stdout, _) = Run(args);
        Assert.Equal(0, code);
        static string Flat(string s) => Regex.Replace(s, @"\s+", " ");
        Assert.Contains(Flat(TextLineReader.InputRule), Flat(stdout));
    }

    [Fact]
    public void A_vocab_txt_with_invalid_utf8_is_reported_with_file_and_line_when_a_model_folder_is_opened()
    {
        var dir = TestPaths.CopyOf(TestPaths.TinyBert);
        var vocab = Path.Combine(dir, ModelFolder.VocabFile);
        var lines = File.ReadAllLines(vocab);
        var bytes = new List<byte>();
        for (int i = 0; i < lines.Length; i++)
        {
            bytes.AddRange(Encoding.UTF8.GetBytes(lines[i]));
            if (i == 6) bytes.Add(0xFF);
            bytes.Add((byte)'\n');
        }
        File.WriteAllBytes(vocab, bytes.ToArray());
        var e = Assert.Throws<BertSharpException>(() => ModelFolder.ReadConfig(dir));
        Assert.Equal($"{vocab}:7: invalid UTF-8", e.Message);
    }
}
