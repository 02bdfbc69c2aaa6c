using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using BertSharp.Serving;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace BertSharp.Tests.Serving;

/// <summary>A <see cref="BertService"/> behind Kestrel on a free port of 127.0.0.1, in this process, with an HTTP client.</summary>
internal sealed class TestServer : IAsyncDisposable
{
    readonly WebApplication app;
    public BertService Service { get; }
    public HttpClient Client { get; }
    public string BaseUrl { get; }

    TestServer(WebApplication app, BertService service, string url)
    {
        this.app = app;
        Service = service;
        BaseUrl = url;
        Client = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(60) };
    }

    public static async Task<TestServer> Start(BertService service)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => { k.Limits.MaxRequestBodySize = service.Options.MaxRequestBytes; k.Listen(System.Net.IPAddress.Loopback, 0); });
        var app = builder.Build();
        app.MapBert(service);
        await app.StartAsync();
        var url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new TestServer(app, service, url);
    }

    public async Task<(int Status, JsonElement Body)> Post(string route, string json, string? apiKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, route) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (apiKey != null) request.Headers.Authorization = new("Bearer", apiKey);
        using var response = await Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    public Task<(int Status, JsonElement Body)> Post(string route, object body, string? apiKey = null) => Post(route, JsonSerializer.Serialize(body), apiKey);

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await app.StopAsync();
        await app.DisposeAsync();
        await Service.DisposeAsync();
    }
}
