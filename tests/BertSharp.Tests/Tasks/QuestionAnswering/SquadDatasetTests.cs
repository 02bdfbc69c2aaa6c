using System.Text.Json.Nodes;
using BertSharp.Tasks.QuestionAnswering;

namespace BertSharp.Tests.Tasks.QuestionAnswering;

public class SquadDatasetTests
{
    internal const string Context = "Super Bowl 50 was played at Levi's Stadium in Santa Clara, California.";

    internal static JsonObject Qa(string id, string question, params (string Text, int Start)[] answers) => new()
    {
        ["id"] = id,
        ["question"] = question,
        ["answers"] = new JsonArray(answers.Select(a => (JsonNode)new JsonObject { ["text"] = a.Text, ["answer_start"] = a.Start }).ToArray()),
    };

    internal static string File(params (string Title, (string Context, JsonObject[] Qas)[] Paragraphs)[] articles) => new JsonObject
    {
        ["version"] = "1.1",
        ["data"] = new JsonArray(articles.Select(a => (JsonNode)new JsonObject
        {
            ["title"] = a.Title,
            ["paragraphs"] = new JsonArray(a.Paragraphs.Select(p => (JsonNode)new JsonObject
            {
                ["context"] = p.Context,
                ["qas"] = new JsonArray(p.Qas.Select(q => (JsonNode)q).ToArray()),
            }).ToArray()),
        }).ToArray()),
    }.ToJsonString();

    static string OneQuestion(JsonObject qa, string context = Context) => File(("T", new[] { (context, new[] { qa }) }));

    [Fact]
    public void Reads_v1_with_several_answers()
    {
        var json = File(
            ("A", new[] { (Context, new[] { Qa("q1", "Where?", ("Levi's Stadium", 28), ("Santa Clara, California", 46)), Qa("q2", "Which?", ("50", 11)) }) }),
            ("B", new[] { ("Other text here.", new[] { Qa("q3", "What?", ("text", 6)) }), ("More.", new[] { Qa("q4", "M?", ("More", 0)) }) }));
        var d = SquadDataset.Parse(json, "x.json");
        Assert.Equal("1.1", d.Version);
        Assert.False(d.IsVersion2);
        Assert.Equal(4, d.Examples.Count);
        Assert.Equal(2, d.Examples[0].Answers.Count);
        Assert.Equal("Santa Clara, California", d.Examples[0].Answers[1].Text);
        Assert.Equal([("A", 0, 2, 1), ("B", 2, 2, 2)], d.Articles.Select(a => (a.Title, a.FirstExample, a.ExampleCount, a.Paragraphs)));
        Assert.Equal((1, 1), (d.Examples[3].Article, d.Examples[3].Paragraph));
    }

    [Fact]
    public void Reads_v2_unanswerable_questions_with_plausible_answers()
    {
        var impossible = new JsonObject
        {
            ["id"] = "n1", ["question"] = "Who lost?", ["answers"] = new JsonArray(), ["is_impossible"] = true,
            ["plausible_answers"] = new JsonArray(new JsonObject { ["text"] = "Santa Clara", ["answer_start"] = 46 }),
        };
        var answerable = Qa("h1", "Where?", ("Levi's Stadium", 28));
        answerable["is_impossible"] = false;
        var d = SquadDataset.Parse(File(("T", new[] { (Context, new[] { impossible, answerable }) })), "v2.json");
        Assert.True(d.IsVersion2);
        Assert.True(d.HasUnanswerable);
        Assert.True(d.Examples[0].IsImpossible);
        Assert.Empty(d.Examples[0].Answers);
        Assert.Equal("Santa Clara", Assert.Single(d.Examples[0].PlausibleAnswers!).Text);
        Assert.False(d.Examples[1].IsImpossible);

        // A plausible answer is checked like an answer.
        impossible["plausible_answers"] = new JsonArray(new JsonObject { ["text"] = "Santa Clara", ["answer_start"] = 40 });
        var e = Assert.Throws<BertSharpException>(() => SquadDataset.Parse(File(("T", new[] { (Context, new[] { (JsonObject)impossible.DeepClone() }) })), "v2.json"));
        Assert.Contains("question n1", e.Message);
        Assert.Contains("plausible_answers[0]", e.Message);
    }

    [Fact]
    public void An_answer_start_that_misses_the_answer_names_the_question()
    {
        var e = Assert.Throws<BertSharpException>(() => SquadDataset.Parse(OneQuestion(Qa("56be4db0acb8001400a502ec", "Where?", ("Levi's Stadium", 27))), "dev.json"));
        Assert.StartsWith("dev.json: data[0].paragraphs[0].qas[0] (question 56be4db0acb8001400a502ec): answers[0]: answer_start 27 does not point at the answer text \"Levi's Stadium\"", e.Message);
        Assert.Contains("the context there reads \" Levi's Stadiu\"", e.Message);
    }

    [Fact]
    public void An_answer_start_beyond_the_context_is_an_error()
    {
        var e = Assert.Throws<BertSharpException>(() => SquadDataset.Parse(OneQuestion(Qa("q9", "Where?", ("Stadium", 500))), "dev.json"));
        Assert.Contains("question q9", e.Message);
        Assert.Contains("answer_start 500 is beyond the context (70 characters)", e.Message);
        // Starting inside the context but running past its end.
        e = Assert.Throws<BertSharpException>(() => SquadDataset.Parse(OneQuestion(Qa("q8", "Where?", ("California. And more", 59))), "dev.json"));
        Assert.Contains("question q8", e.Message);
        Assert.Contains("does not point at the answer text", e.Message);
    }

    [Theory]
    [InlineData("", "the context is empty")]
    [InlineData(" \n\t ", "the context is empty")]
    public void An_empty_context_is_an_error(string context, string expected)
    {
        var e = Assert.Throws<BertSharpException>(() => SquadDataset.Parse(OneQuestion(Qa("q1", "Where?"), context), "f.json"));
        Assert.Equal($"f.json: data[0].paragraphs[0]: {expected}", e.Message);
    }

    [Theory]
    [InlineData("[1, 2, 3]", "not a SQuAD file: expected a JSON object with a \"data\" list of articles, found a list")]
    [InlineData("{\"version\": \"1.1\"}", "not a SQuAD file: expected a JSON object with a \"data\" list of articles, found an object with keys \"version\"")]
    [InlineData("{\"data\": {}}", "not a SQuAD file")]
    [InlineData("{\"data\": [{\"title\": \"x\"}]}", "data[0]: not a SQuAD article: expected an object with a \"paragraphs\" list")]
    [InlineData("{\"text\": \"a\"}\n{\"text\": \"b\"}", "not valid JSON (line 2")]
    [InlineData("{\"data\": []}", "holds no questions")]
    [InlineData("{\"data\": [{\"paragraphs\": [{\"context\": \"abc\", \"qas\": [{\"id\": \"1\", \"answers\": []}]}]}]}", "(question 1): missing \"question\"")]
    [InlineData("{\"data\": [{\"paragraphs\": [{\"context\": 5, \"qas\": []}]}]}", "\"context\" must be a string, found a number")]
    public void A_file_that_is_not_SQuAD_gets_a_clear_error(string json, string expected)
    {
        var e = Assert.Throws<BertSharpException>(() => SquadDataset.Parse(json, "in.json"));
        Assert.StartsWith("in.json: ", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Duplicate_ids_and_inconsistent_unanswerable_questions_are_errors()
    {
        var json = File(("T", new[] { (Context, new[] { Qa("d", "A?", ("Super", 0)), Qa("d", "B?", ("Bowl", 6)) }) }));
        Assert.Contains("question id d appears twice", Assert.Throws<BertSharpException>(() => SquadDataset.Parse(json)).Message);
        var both = Qa("i", "A?", ("Super", 0));
        both["is_impossible"] = true;
        Assert.Contains("is_impossible is true but the question has 1 answer(s)", Assert.Throws<BertSharpException>(() => SquadDataset.Parse(OneQuestion(both))).Message);
    }

    [Fact]
    public void Missing_files_are_named()
    {
        Assert.Equal("/no/such/squad.json: file not found", Assert.Throws<BertSharpException>(() => SquadDataset.Load("/no/such/squad.json")).Message);
    }

    [Fact]
    public void Splits_by_article_in_file_order()
    {
        var articles = Enumerable.Range(0, 5).Select(a => ($"T{a}", Enumerable.Range(0, a + 1)
            .Select(p => ($"Text {a} {p}.", new[] { Qa($"{a}-{p}", "Q?", ("Text", 0)) })).ToArray())).ToArray();
        var d = SquadDataset.Parse(File(articles), "f.json");
        Assert.Equal(15, d.Examples.Count);
        var (train, eval) = d.SplitArticles(3);
        Assert.Equal(["T0", "T1", "T2"], train.Articles.Select(a => a.Title));
        Assert.Equal(6, train.Examples.Count);
        Assert.Equal(["T3", "T4"], eval.Articles.Select(a => a.Title));
        Assert.Equal(9, eval.Examples.Count);
        Assert.Equal("3-0", eval.Examples[0].Id);
        Assert.Equal([0, 4], eval.Articles.Select(a => a.FirstExample));
        Assert.Equal("f.json [articles 4-5]", eval.Source);
        Assert.Contains("must be between 1 and 4", Assert.Throws<BertSharpException>(() => d.SplitArticles(5)).Message);
        Assert.Contains("must be between 1 and 4", Assert.Throws<BertSharpException>(() => d.SplitArticles(0)).Message);
        Assert.Equal(4, d.Take(4).Examples.Count);
    }
}
