// The establishment's own networks and the reverse proxies are typed by an operator: every mistake is refused
// with the option's name and the entry at fault, never widened or narrowed silently.
using System.Net;
using Vauban.Access;

namespace Vauban.Tests.People;

public sealed class NetworkListTests
{
    [Fact]
    public void Networks_and_single_addresses_of_both_families_are_read()
    {
        var networks = NetworkList.Parse("--internal-networks", " 10.0.0.0/8, 192.168.0.0/16,203.0.113.7 , 2001:db8::/32,,::ffff:198.51.100.1");
        Assert.Equal(["10.0.0.0/8", "192.168.0.0/16", "203.0.113.7/32", "2001:db8::/32", "198.51.100.1/32"], networks.Select(n => n.ToString()));
        Assert.Empty(NetworkList.Parse("--internal-networks", null));
        Assert.Empty(NetworkList.Parse("--internal-networks", ""));
    }

    [Theory]
    [InlineData("10.0.0.1/8", "'10.0.0.1/8' names a host, not a network: write the network's first address, 10.0.0.0/8.")]
    [InlineData("192.168.1.77/24", "'192.168.1.77/24' names a host, not a network: write the network's first address, 192.168.1.0/24.")]
    [InlineData("2001:db8::1/32", "'2001:db8::1/32' names a host, not a network: write the network's first address, 2001:db8::/32.")]
    [InlineData("10.0.0.0/33", "'10.0.0.0/33' is not an IP address or a network")]
    [InlineData("hospital.example", "'hospital.example' is not an IP address or a network")]
    [InlineData("10.0.0.0/8;192.168.0.0/16", "'10.0.0.0/8;192.168.0.0/16' is not an IP address or a network")]
    public void A_mistake_is_refused_naming_the_option_and_the_entry(string entry, string expected)
    {
        var error = Assert.Throws<ArgumentException>(() => NetworkList.Parse("--internal-networks", "10.0.0.0/8," + entry));
        Assert.StartsWith("--internal-networks: " + expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_address_is_matched_in_its_family_and_an_IPv4_address_seen_as_IPv6_as_itself()
    {
        var networks = NetworkList.Parse("--internal-networks", "10.0.0.0/8,2001:db8:5::/48");
        Assert.True(NetworkList.Contains(networks, IPAddress.Parse("10.200.3.4")));
        Assert.True(NetworkList.Contains(networks, IPAddress.Parse("::ffff:10.200.3.4")));
        Assert.True(NetworkList.Contains(networks, IPAddress.Parse("2001:db8:5:6::1")));
        Assert.False(NetworkList.Contains(networks, IPAddress.Parse("11.0.0.1")));
        Assert.False(NetworkList.Contains(networks, IPAddress.Parse("2001:db8:6::1")));
        Assert.False(NetworkList.Contains([], IPAddress.Parse("10.0.0.1")));
    }

    [Fact]
    public void An_IPv4_network_written_as_IPv4_mapped_IPv6_is_the_IPv4_network_and_held_to_its_width()
    {
        // As a dual-stack host's logs show the NAT's address: kept as an IPv6 network it never matched.
        var networks = NetworkList.Parse("--internal-networks", "::ffff:10.0.0.0/104");
        Assert.True(NetworkList.Contains(networks, IPAddress.Parse("10.1.2.3")));
        Assert.True(NetworkList.Contains(networks, IPAddress.Parse("::ffff:10.1.2.3")));
        Assert.False(NetworkList.Contains(networks, IPAddress.Parse("11.1.2.3")));
        Assert.Equal(IPAddress.Parse("0.0.0.0"), Assert.Single(NetworkList.Parse("--trusted-proxies", "::ffff:0:0/96")).BaseAddress);
        Assert.NotNull(NetworkList.WiderThanAnEstablishment(NetworkList.Parse("--trusted-proxies", "::ffff:0:0/96"))); // 0.0.0.0/0
    }

    [Theory]
    [InlineData("0.0.0.0/0")]
    [InlineData("0.0.0.0/1")]
    [InlineData("8.0.0.0/7")]
    [InlineData("::/0")]
    [InlineData("2000::/3")]
    public void Internal_networks_wider_than_an_establishments_own_are_refused_at_start(string network)
    {
        var options = new AccountOptions { InternalNetworks = NetworkList.Parse("--internal-networks", network) };
        var error = Assert.Throws<VaubanConfigurationException>(options.Validate);
        Assert.Contains("wider than an establishment's own networks", error.Message, StringComparison.Ordinal);
        new AccountOptions { InternalNetworks = NetworkList.Parse("--internal-networks", "10.0.0.0/8,fc00::/7") }.Validate();
    }
}
