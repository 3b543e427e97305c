// A list of IP networks as an operator types it on the command line ("10.0.0.0/8, 192.168.0.0/16,
// 10.0.0.2"): the reverse proxies believed, the establishment's own networks. One parser, so that every
// such option accepts the same forms and refuses a mistake with the same clear words.
using System.Net;

namespace Vauban.Access;

public static class NetworkList
{
    /// <summary>Comma-separated addresses (a network of one) and CIDR networks. Throws <see cref="ArgumentException"/> naming
    /// <paramref name="option"/> and the entry at fault: not an address, a prefix too long for its family, or a network written
    /// from one of its hosts (10.0.0.1/8), which is refused rather than silently widened or narrowed.</summary>
    public static IReadOnlyList<IPNetwork> Parse(string option, string? text)
    {
        var networks = new List<IPNetwork>();
        foreach (var entry in (text ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            // Not IPAddress.TryParse on the whole entry: it takes an IPv6 address followed by /length as the address alone.
            if (!entry.Contains('/', StringComparison.Ordinal) && IPAddress.TryParse(entry, out var one))
            {
                one = Canonical(one);
                networks.Add(new IPNetwork(one, one.GetAddressBytes().Length * 8));
            }
            else if (entry.Split('/') is [var address, var length] && IPAddress.TryParse(address, out var first) && !address.Contains('%', StringComparison.Ordinal)
                && int.TryParse(length, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var bits)
                && bits <= first.GetAddressBytes().Length * 8)
            {
                // .NET's IPNetwork.TryParse takes 10.0.0.1/8 as 10.0.0.0/8: whoever typed it may have meant 10.0.0.1/32.
                var network = new IPNetwork(HostBitsCleared(first, bits), bits);
                if (!network.BaseAddress.Equals(first))
                {
                    throw new ArgumentException($"{option}: '{entry}' names a host, not a network: write the network's first address, {network}.");
                }
                // An IPv4 network written as IPv4-mapped IPv6 (::ffff:10.0.0.0/104, as a dual-stack host's logs show it): matched as
                // the IPv4 network it is, since addresses are matched in their IPv4 form; kept as written it never matched.
                if (first.IsIPv4MappedToIPv6 && bits >= 96) network = new IPNetwork(network.BaseAddress.MapToIPv4(), bits - 96);
                networks.Add(network);
            }
            else throw new ArgumentException($"{option}: '{entry}' is not an IP address or a network such as 10.0.0.0/8 (several separated by commas).");
        }
        return networks;
    }

    /// <summary>The first of <paramref name="networks"/> wider than any establishment's own addresses (a prefix shorter than /8
    /// in IPv4, /7 in IPv6: the whole internet, or a good part of it), or null.</summary>
    public static IPNetwork? WiderThanAnEstablishment(IReadOnlyList<IPNetwork> networks)
    {
        ArgumentNullException.ThrowIfNull(networks);
        foreach (var network in networks)
        {
            var widest = network.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 8 : 7;
            if (network.PrefixLength < widest) return network;
        }
        return null;
    }

    /// <summary>Whether <paramref name="address"/> is in one of <paramref name="networks"/>; an IPv4 address that reaches a dual-stack
    /// listener as ::ffff:a.b.c.d is matched as a.b.c.d.</summary>
    public static bool Contains(IReadOnlyList<IPNetwork> networks, IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(networks);
        address = Canonical(address);
        foreach (var network in networks)
        {
            if (network.Contains(address)) return true;
        }
        return false;
    }

    private static IPAddress Canonical(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    private static IPAddress HostBitsCleared(IPAddress address, int bits)
    {
        var bytes = address.GetAddressBytes();
        for (var i = 0; i < bytes.Length; i++)
        {
            var keep = Math.Clamp(bits - i * 8, 0, 8);
            bytes[i] &= (byte)(0xFF << (8 - keep));
        }
        return new IPAddress(bytes);
    }
}
