using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using BatchScoring.Worker.Requests.Transport;
using RabbitMQ.Client;

namespace BatchScoring.IntegrationTests.Requests.Transport;

/// <summary>
/// The coalescing socket under RabbitMQ.Client's request-mode connection, on a loopback socket pair: bytes arrive
/// complete and in order, a peer that stops reading holds writers back, and a broken connection fails later writes.
/// </summary>
public sealed class CoalescingTcpClientTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Many_small_writes_arrive_complete_and_in_order()
    {
        await using var pair = await SocketPair.OpenAsync();
        var stream = pair.Client.GetStream();
        var random = new Random(5);
        var frames = Enumerable.Range(0, 20_000).Select(_ =>
        {
            var frame = new byte[1 + random.Next(300)];
            random.NextBytes(frame);
            return frame;
        }).ToArray();
        var expected = frames.SelectMany(f => f).ToArray();

        // Read while writing: more than the buffer's bound is written.
        var reading = ReadExactlyAsync(pair.Server, expected.Length);
        foreach (var frame in frames)
        {
            await stream.WriteAsync(frame, Ct);
        }

        await stream.FlushAsync(Ct);
        Assert.Equal(expected, await reading);
    }

    [Fact]
    public async Task A_peer_that_stops_reading_holds_writers_back_until_it_reads_again()
    {
        await using var pair = await SocketPair.OpenAsync();
        var stream = pair.Client.GetStream();
        var chunk = new byte[64 * 1024];
        long written = 0;
        ValueTask pending = default;
        for (var i = 0; i < 1024; i++)
        {
            chunk.AsSpan().Fill((byte)i);
            pending = stream.WriteAsync(chunk, Ct);
            written += chunk.Length;
            if (!pending.IsCompleted)
            {
                break;
            }
        }

        // The buffer is bounded (1 MiB) on top of the kernel's socket buffers: far below the 64 MiB tried.
        Assert.False(pending.IsCompleted, $"{written / 1024} KiB were accepted without the peer reading");
        var received = await ReadExactlyAsync(pair.Server, (int)written);
        await pending.AsTask().WaitAsync(TimeSpan.FromSeconds(10), Ct);
        for (var i = 0; i < written / chunk.Length; i++)
        {
            Assert.True(received.AsSpan(i * chunk.Length, chunk.Length).IndexOfAnyExcept((byte)i) < 0, $"chunk {i} arrived altered or out of order");
        }
    }

    [Fact]
    public async Task Writes_after_the_peer_reset_the_connection_fail_and_close_returns()
    {
        await using var pair = await SocketPair.OpenAsync();
        var stream = pair.Client.GetStream();
        await stream.WriteAsync(new byte[] { 1, 2, 3 }, Ct);
        await ReadExactlyAsync(pair.Server, 3);
        pair.Server.LingerState = new LingerOption(enable: true, seconds: 0);
        pair.Server.Close();

        var failure = await Assert.ThrowsAnyAsync<IOException>(async () =>
        {
            for (var i = 0; i < 10_000; i++)
            {
                await stream.WriteAsync(new byte[1024], Ct);
                await Task.Delay(1, Ct); // paced writes, so the peer's reset arrives between two of them
            }
        });
        Assert.Contains("earlier send", failure.Message, StringComparison.Ordinal);

        var watch = Stopwatch.StartNew();
        pair.Client.Close();
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"Close took {watch.Elapsed}");
    }

    private static async Task<byte[]> ReadExactlyAsync(Socket socket, int count)
    {
        var buffer = new byte[count];
        var read = 0;
        while (read < count)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(30), Ct);
            Assert.True(n > 0, $"the connection closed after {read} of {count} bytes");
            read += n;
        }

        return buffer;
    }

    private sealed class SocketPair : IAsyncDisposable
    {
        private SocketPair(ITcpClient client, Socket server)
        {
            Client = client;
            Server = server;
        }

        public ITcpClient Client { get; }

        public Socket Server { get; }

        public static async Task<SocketPair> OpenAsync()
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var client = CoalescingTcpClient.Create(AddressFamily.InterNetwork);
            var accepting = listener.AcceptSocketAsync(Ct).AsTask();
            await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port, Ct);
            return new SocketPair(client, await accepting);
        }

        public ValueTask DisposeAsync()
        {
            Client.Dispose();
            Server.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
