using BertSharp.Data;
using BertSharp.Hub;

namespace BertSharp.Tests.Hub;

/// <summary>Reading a model argument, the Hub settings from the environment, ETags, the download bar.</summary>
public class ModelReferenceTests
{
    [Theory]
    [InlineData("bert-base-uncased", "bert-base-uncased", "main")]
    [InlineData("sentence-transformers/all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "main")]
    [InlineData("org/name@v1.0", "org/name", "v1.0")]
    [InlineData("org/name@refs/pr/1", "org/name", "refs/pr/1")]
    [InlineData("Org_1/Foo-BAR_foo.bar123@0123456789abcdef0123456789abcdef01234567", "Org_1/Foo-BAR_foo.bar123", "0123456789abcdef0123456789abcdef01234567")]
    public void HubIdsAreParsed(string text, string repoId, string revision)
    {
        var r = ModelReference.Parse(text);
        Assert.True(r.IsHubId);
        Assert.Equal((repoId, revision), (r.RepoId, r.Revision));
        Assert.Null(r.Folder);
        Assert.Equal(text, r.ToString());
    }

    [Theory]
    [InlineData("datasets/foo/bar", "an id is name or org/name")]
    [InlineData(".repo_id", "does not start or end with '-' or '.'")]
    [InlineData("foo--bar", "cannot contain '--' or '..'")]
    [InlineData("foo..bar", "cannot contain '--' or '..'")]
    [InlineData("foo.git", "cannot end in '.git'")]
    [InlineData("org/name@", "nothing after '@'")]
    [InlineData("org/name@a..b", "not a branch, tag or commit name")]
    [InlineData("org/name@has space", "a character a git ref cannot have")]
    [InlineData("./missing", "does not start or end")]
    [InlineData("/abs/path/missing", "an id is name or org/name")]
    public void WhatIsNeitherAFolderNorAnIdSaysBoth(string text, string problem)
    {
        var e = Assert.Throws<BertSharpException>(() => ModelReference.Parse(text));
        Assert.StartsWith($"{text}: model folder not found, and not a Hub model id (", e.Message);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void AnExistingFolderWinsOverAnIdOfTheSameName()
    {
        string root = TestPaths.TempDir("ref");
        string folder = Path.Combine(root, "org", "name");
        Directory.CreateDirectory(folder);
        var r = ModelReference.Parse(folder);
        Assert.Equal(folder, r.Folder);
        Assert.False(r.IsHubId);
        var file = Path.Combine(root, "weights.bin");
        File.WriteAllBytes(file, [1]);
        Assert.Contains("is a file; expected a model folder", Assert.Throws<BertSharpException>(() => ModelReference.Parse(file)).Message);
    }

    static Func<string, string?> Env(params (string Name, string Value)[] vars) =>
        name => vars.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void SettingsAreReadFromTheEnvironmentAsHuggingFaceHubReadsThem()
    {
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var none = HubOptions.FromEnvironment(Env());
        Assert.Equal(Path.Combine(home, ".cache", "huggingface", "hub"), none.CacheDir);
        Assert.Equal("https://huggingface.co", none.Endpoint);
        Assert.False(none.Offline);

        Assert.Equal("/x/huggingface/hub", HubOptions.FromEnvironment(Env(("XDG_CACHE_HOME", "/x"))).CacheDir);
        Assert.Equal("/h/hub", HubOptions.FromEnvironment(Env(("XDG_CACHE_HOME", "/x"), ("HF_HOME", "/h"))).CacheDir);
        Assert.Equal("/c", HubOptions.FromEnvironment(Env(("HF_HOME", "/h"), ("HUGGINGFACE_HUB_CACHE", "/legacy"), ("HF_HUB_CACHE", "/c"))).CacheDir);
        Assert.Equal("/legacy", HubOptions.FromEnvironment(Env(("HF_HOME", "/h"), ("HUGGINGFACE_HUB_CACHE", "/legacy"))).CacheDir);
        Assert.Equal(Path.Combine(home, "models", "hub"), HubOptions.FromEnvironment(Env(("HF_HOME", "~/models"))).CacheDir);
        Assert.Equal("/data/me/hub", HubOptions.FromEnvironment(Env(("HF_HOME", "/data/${WHO}"), ("WHO", "me"))).CacheDir);

        var set = HubOptions.FromEnvironment(Env(("HF_ENDPOINT", "http://mirror.local:8080/"), ("HF_TOKEN", "hf_abc"), ("HF_HUB_OFFLINE", "yes")));
        Assert.Equal(("http://mirror.local:8080", "hf_abc", true), (set.Endpoint, set.Token, set.Offline));
        foreach (var value in new[] { "1", "ON", "true", "Yes" })
            Assert.True(HubOptions.FromEnvironment(Env(("HF_HUB_OFFLINE", value))).Offline);
        foreach (var value in new[] { "0", "off", "false", "" })
            Assert.False(HubOptions.FromEnvironment(Env(("HF_HUB_OFFLINE", value))).Offline);
        Assert.True(HubOptions.FromEnvironment(Env(("TRANSFORMERS_OFFLINE", "1"))).Offline);
    }

    [Fact]
    public void TheTokenLoginSavedIsUsedWhenHfTokenIsUnset()
    {
        string hfHome = TestPaths.TempDir("hfhome");
        File.WriteAllText(Path.Combine(hfHome, "token"), "hf_saved\n");
        Assert.Equal("hf_saved", HubOptions.FromEnvironment(Env(("HF_HOME", hfHome))).Token);
        Assert.Equal("hf_env", HubOptions.FromEnvironment(Env(("HF_HOME", hfHome), ("HF_TOKEN", "hf_env"))).Token);
        Assert.Null(HubOptions.FromEnvironment(Env(("HF_HOME", Path.Combine(hfHome, "none")))).Token);
    }

    [Theory]
    [InlineData("\"abc123\"", "abc123")]
    [InlineData("W/\"abc123\"", "abc123")]
    [InlineData("abc123", "abc123")]
    [InlineData("\"\"", null)]
    [InlineData(null, null)]
    public void EtagsAreNormalizedAsHuggingFaceHubDoes(string? header, string? expected) =>
        Assert.Equal(expected, HubHttp.NormalizeEtag(header));

    [Fact]
    public void TheDownloadBarShowsSizeAndSpeed()
    {
        Assert.Equal("model.safetensors [#########-----------]  45.0%  2.0 / 4.5 MB  3.1 MB/s",
            DownloadProgressBar.Format("model.safetensors", new DownloadProgress("u", 2_025_000, 4_500_000, false), 3_100_000));
        var w = new StringWriter();
        var bar = new DownloadProgressBar(w);
        bar.Report(new DownloadProgress("http://hub/org/name/resolve/main/1_Pooling/config.json", 0, 190, false));
        bar.Report(new DownloadProgress("http://hub/org/name/resolve/main/1_Pooling/config.json", 190, 190, true));
        Assert.EndsWith("config.json [####################] 100.0%  0.0 / 0.0 MB" + Environment.NewLine, w.ToString());
    }
}
