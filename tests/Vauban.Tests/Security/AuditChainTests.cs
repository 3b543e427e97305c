using System.Globalization;
using Vauban.Audit;

namespace Vauban.Tests.Security;

/// <summary>The associated data of an audit entry's sealed part is part of every stored entry: the stack-formatted binding
/// must be, character for character, the string entries were sealed under before it existed.</summary>
public sealed class AuditChainTests
{
    [Theory]
    [InlineData(0L, 0, 0, 0L, 0L)]
    [InlineData(1_764_582_000_000L, 1, 42, 0x1234_5678_9ABC_DEF0L, -1L)]
    [InlineData(long.MinValue, int.MinValue, int.MinValue, long.MinValue, long.MinValue)]
    [InlineData(long.MaxValue, int.MaxValue, int.MaxValue, long.MaxValue, long.MaxValue)]
    [InlineData(-1L, -1, -1, -1L, 0L)]
    public void The_seal_binding_is_the_string_entries_were_sealed_under_even_at_the_extremes(long at, int action, int type, long principal, long patient)
    {
        var earlier = string.Create(CultureInfo.InvariantCulture, $"audit:{at}:{action}:{type}:{principal:x16}:{patient:x16}");
        Assert.Equal(earlier, AuditChain.SealBinding(at, action, type, principal, patient));
        Span<char> exact = stackalloc char[AuditChain.SealBindingMaxLength];
        var length = AuditChain.WriteSealBinding(exact, at, action, type, principal, patient);
        Assert.Equal(earlier, exact[..length].ToString());
    }

    [Fact]
    public void A_buffer_shorter_than_the_longest_binding_is_refused_rather_than_cut()
    {
        var buffer = new char[AuditChain.SealBindingMaxLength - 1];
        Assert.Throws<ArgumentException>(() => AuditChain.WriteSealBinding(buffer, long.MinValue, int.MinValue, int.MinValue, long.MinValue, long.MinValue));
    }
}
