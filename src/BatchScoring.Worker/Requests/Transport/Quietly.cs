using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace BatchScoring.Worker.Requests.Transport;

/// <summary>Closing at shutdown, when the broker connection may already be gone: nothing is left to close then.</summary>
internal static class Quietly
{
    public static Task CloseAsync(IChannel? channel) => channel is null ? Task.CompletedTask : CloseAsync(() => channel.CloseAsync(), channel);

    public static Task CloseAsync(IConnection? connection) => connection is null ? Task.CompletedTask : CloseAsync(() => connection.CloseAsync(), connection);

    private static async Task CloseAsync(Func<Task> close, IDisposable disposable)
    {
        try
        {
            await close();
        }
        catch (Exception ex) when (ex is OperationInterruptedException or AlreadyClosedException or IOException)
        {
            // connection already gone
        }

        disposable.Dispose();
    }
}
