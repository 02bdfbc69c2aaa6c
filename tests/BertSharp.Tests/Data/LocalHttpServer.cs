using System.Net;
using System.Net.Sockets;
using System.Text;

namespace BertSharp.Tests.Data;

/// <summary>A tiny HTTP/1.1 server on 127.0.0.1 for download tests: serves fixed byte arrays by path, 404
/// otherwise, one request per connection; or, given a <see cref="Responder"/>, answers as that says (the fake Hub).
/// No external network.</summary>
public sealed class LocalHttpServer : IDisposable
{
    /// <summary>Answers one request: its head (request line and headers, up to the blank line) and the connection.</summary>
    public delegate Task Responder(string requestHead, NetworkStream stream, TcpClient client, CancellationToken stop);

    readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    readonly Dictionary<string, byte[]> _files = new();
    readonly CancellationTokenSource _stop = new();
    readonly Responder _respond;
    readonly Task _loop;
    int _requests;

    public LocalHttpServer() : this(null) { }

    public LocalHttpServer(Responder? respond)
    {
        _respond = respond ?? ServeFile;
        _listener.Start();
        _loop = Task.Run(AcceptLoop);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
    public string BaseUrl => $"http://127.0.0.1:{Port}";
    public int Requests => Volatile.Read(ref _requests);

    public void Serve(string path, byte[] content)
    {
        lock (_files) _files[path] = content;
    }

    /// <summary>A port on 127.0.0.1 with nothing listening (connection refused).</summary>
    public static int ClosedPort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            _ = Task.Run(() => Handle(client));
        }
    }

    async Task Handle(TcpClient client)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                var header = new StringBuilder();
                var buf = new byte[4096];
                while (!header.ToString().Contains("\r\n\r\n"))
                {
                    int n = await stream.ReadAsync(buf, _stop.Token);
                    if (n == 0) return;
                    header.Append(Encoding.ASCII.GetString(buf, 0, n));
                }
                Interlocked.Increment(ref _requests);
                await _respond(header.ToString(), stream, client, _stop.Token);
            }
            catch (Exception) { }
        }
    }

    async Task ServeFile(string header, NetworkStream stream, TcpClient client, CancellationToken stop)
    {
        string path = header.Split(' ')[1];
        byte[]? body;
        lock (_files) _files.TryGetValue(path, out body);
        string status = body is null ? "404 Not Found" : "200 OK";
        body ??= Encoding.ASCII.GetBytes("not found");
        var head = Encoding.ASCII.GetBytes(
            $"HTTP/1.1 {status}\r\nContent-Length: {body.Length}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n");
        await stream.WriteAsync(head, stop);
        await stream.WriteAsync(body, stop);
        await stream.FlushAsync(stop);
        client.Client.Shutdown(SocketShutdown.Send);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        _stop.Dispose();
    }
}
