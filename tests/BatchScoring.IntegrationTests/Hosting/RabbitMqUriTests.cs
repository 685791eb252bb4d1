using BatchScoring.ServiceDefaults;
using MassTransit.RabbitMqTransport.Configuration;

namespace BatchScoring.IntegrationTests.Hosting;

/// <summary>ConnectionStrings:RabbitMq as the bus reads it: MassTransit's parsing of the URI plus the host's own settings.</summary>
public sealed class RabbitMqUriTests
{
    [Theory]
    [InlineData("amqp://localhost", "localhost", 5672, "/", false)]
    [InlineData("amqp://bs:secret@rabbit:5673/", "rabbit", 5673, "/", false)]
    [InlineData("amqp://bs:secret@rabbit/scoring", "rabbit", 5672, "scoring", false)]
    [InlineData("amqp://bs:secret@rabbit/%2Fteam", "rabbit", 5672, "/team", false)]
    [InlineData("amqps://bs:secret@rabbit.example.com/scoring", "rabbit.example.com", 5671, "scoring", true)]
    [InlineData("amqps://bs:secret@rabbit.example.com:5679/", "rabbit.example.com", 5679, "/", true)]
    public void Host_port_virtual_host_and_tls_come_from_the_uri(string uri, string host, int port, string virtualHost, bool tls)
    {
        var settings = Configure(uri);

        Assert.Equal(host, settings.Host);
        Assert.Equal(port, settings.Port);
        Assert.Equal(virtualHost, settings.VirtualHost);
        Assert.Equal(tls, settings.Ssl);
        if (tls)
        {
            Assert.Equal(host, settings.SslServerName);
        }

        Assert.Equal(TimeSpan.FromSeconds(5), settings.RequestedConnectionTimeout);
    }

    [Fact]
    public void Escaped_user_and_password_are_decoded_and_kept_out_of_the_host_address()
    {
        var settings = Configure("amqps://scoring%40svc:p%3Ass%2Fw+rd@rabbit/prod");

        Assert.Equal("scoring@svc", settings.Username);
        Assert.Equal("p:ss/w+rd", settings.Password);
        // The address MassTransit logs and names endpoints with carries no credentials.
        Assert.DoesNotContain("p:ss", settings.HostAddress.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("scoring@svc", settings.HostAddress.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Without_user_info_the_client_default_guest_account_is_used()
    {
        var settings = Configure("amqp://localhost:5672/");

        Assert.True(string.IsNullOrEmpty(settings.Username));
        var factory = MassTransit.RabbitMqTransport.RabbitMqAddressExtensions.GetConnectionFactory(settings);
        Assert.Equal("guest", factory.UserName);
        Assert.Equal("guest", factory.Password);
    }

    private static MassTransit.RabbitMqHostSettings Configure(string text)
    {
        var uri = new Uri(text);
        var configurator = new RabbitMqHostConfigurator(uri);
        BatchScoringHostExtensions.ConfigureRabbitMqHost(configurator, uri);
        return configurator.Settings;
    }
}
