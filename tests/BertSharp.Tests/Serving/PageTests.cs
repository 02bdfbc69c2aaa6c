using System.Diagnostics;
using BertSharp.Serving;
using BertSharp.Tests.Tasks;

namespace BertSharp.Tests.Serving;

/// <summary>A fact that needs a headless Chromium (Debian's chromium package); skipped, with the reason, without one.</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public static readonly string? Browser = new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome" }.FirstOrDefault(File.Exists);

    public ChromiumFactAttribute()
    {
        if (Browser is null) Skip = "needs a headless Chromium (apt-get install chromium)";
    }
}

/// <summary>The page at / in a real browser: it loads, submits the text given in its address, and shows the answer.</summary>
public class PageTests
{
    /// <summary>The page's DOM after its script ran (Chromium's --dump-dom with a virtual time budget).</summary>
    static string RenderedPage(string url)
    {
        var psi = new ProcessStartInfo(ChromiumFactAttribute.Browser!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", "--virtual-time-budget=15000", url }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.ErrorDataReceived += (_, _) => { };
        p.BeginErrorReadLine();
        var dom = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(60_000)) { p.Kill(true); throw new TimeoutException("chromium did not finish"); }
        return dom;
    }

    [ChromiumFact]
    public async Task TheClassifierPageShowsTheLabelAndItsProbabilities()
    {
        var dir = TestPaths.TempDir("page-classifier");
        CliFineTuneTests.WriteClassification(dir);
        var run = Path.Combine(dir, "run");
        BertSharp.Tasks.FineTuneRun.Run(new BertSharp.Tasks.FineTuneOptions
        {
            Task = "classify", Model = TestPaths.TinyBert, Train = Path.Combine(dir, "train.tsv"), Dev = Path.Combine(dir, "dev.tsv"), Output = run, MaxSteps = 2, Seed = 3, Threads = 1,
        });
        await using var server = await TestServer.Start(BertService.Load(run));
        var expected = ((BertSharp.Tasks.Classification.ClassificationModel)server.Service.Model).Predict("the word is", "it was");
        var dom = RenderedPage($"{server.BaseUrl}/?text=the%20word%20is&pair=it%20was");
        Assert.Contains("data-state=\"done\"", dom);
        Assert.Contains($"<div class=\"label\" id=\"label\" style=\"font-size: 1.3rem;\">{expected.Label}</div>", dom);
        Assert.Contains($"{expected.Label}  {100 * expected.Probability:F1} %", dom);
    }

    [ChromiumFact]
    public async Task TheMultiLabelPageShowsEveryLabelOverTheThreshold()
    {
        string dir = Export.TinyTaskFolders.Make("classify", seed: 24, multiLabel: true, threshold: 0.35);
        await using var server = await TestServer.Start(BertService.Load(dir));
        var expected = ((BertSharp.Tasks.Classification.ClassificationModel)server.Service.Model).Predict("the word is");
        var dom = RenderedPage($"{server.BaseUrl}/?text=the%20word%20is");
        string shown = expected.Labels.Count == 0 ? "(no label)" : string.Join(", ", expected.Labels);
        Assert.Contains($"<div class=\"label\" id=\"label\" style=\"font-size: 1.3rem;\">{shown}</div>", dom);
    }

    [ChromiumFact]
    public async Task TheEmbeddingPageShowsTheCosineOfTwoTexts()
    {
        await using var server = await TestServer.Start(BertService.Load(TestPaths.TinyBert));
        using var encoder = BertSharp.Inference.SentenceEncoder.Load(TestPaths.TinyBert);
        var (u, v) = (encoder.Encode("the day"), encoder.Encode("one word"));
        double cosine = BertSharp.Tasks.Embedding.EmbeddingModel.Cosine(u, v);
        var dom = RenderedPage($"{server.BaseUrl}/?text=the%20day&pair=one%20word");
        Assert.Contains($"<div id=\"score\">Cosine similarity: {cosine:F3}</div>", dom);
    }
}
