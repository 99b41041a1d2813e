// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

interface IPoolTokens {
    function token0() external view returns (address);
    function token1() external view returns (address);
}

interface IPairSwap {
    function getReserves() external view returns (uint112, uint112, uint32);
    function swap(uint256 amount0Out, uint256 amount1Out, address to, bytes calldata data) external;
}

interface IConcentratedPoolSwap {
    function swap(
        address recipient,
        bool zeroForOne,
        int256 amountSpecified,
        uint160 sqrtPriceLimitX96,
        bytes calldata data
    ) external returns (int256 amount0, int256 amount1);
}

/// @dev A Uniswap V4 pool's key and a swap's parameters, laid out as the PoolManager's ABI.
struct ManagerPoolKey {
    address currency0;
    address currency1;
    uint24 fee;
    int24 tickSpacing;
    address hooks;
}

struct ManagerSwapParams {
    bool zeroForOne;
    int256 amountSpecified;
    uint160 sqrtPriceLimitX96;
}

interface IManagerSwap {
    function unlock(bytes calldata data) external returns (bytes memory);
    function swap(ManagerPoolKey memory key, ManagerSwapParams memory params, bytes calldata hookData)
        external
        returns (int256 delta);
    function sync(address currency) external;
    function take(address currency, address to, uint256 amount) external;
    function settle() external payable returns (uint256 paid);
}

interface ICoinPoolSwap {
    function exchange_received(int128 i, int128 j, uint256 dx, uint256 minDy, address receiver)
        external
        returns (uint256);
}

/// @dev The Balancer V2 Vault's `swap` argument structs, laid out as its ABI.
struct VaultSingleSwap {
    bytes32 poolId;
    uint8 kind;
    address assetIn;
    address assetOut;
    uint256 amount;
    bytes userData;
}

struct VaultFundManagement {
    address sender;
    bool fromInternalBalance;
    address recipient;
    bool toInternalBalance;
}

interface IVaultPool {
    function getPoolId() external view returns (bytes32);
    function getVault() external view returns (address);
}

interface IVaultSwap {
    function swap(VaultSingleSwap memory singleSwap, VaultFundManagement memory funds, uint256 limit, uint256 deadline)
        external
        payable
        returns (uint256);
}

interface IBalance {
    function balanceOf(address account) external view returns (uint256);
}

interface IWrappedNative {
    function withdraw(uint256 amount) external;
}

/// @title ArenaExecutor
/// @notice Runs one arbitrage cycle over Uniswap V2 pairs, V3 pools and V4 pools without
/// capital. The first hop is a flash swap: its callback runs the remaining hops and then
/// pays the first pool. Each later hop pays its pool directly: a V2 pair receives its input
/// from the hop before (as that hop's recipient), a V3 pool is paid inside its callback, a
/// V4 pool is paid to its PoolManager (sync, transfer, settle) inside the manager's unlock.
///
/// The path is packed, one record per hop, starting with the pool's (V4: the PoolManager's)
/// 20-byte address and a flags byte (bit 0: token0 -> token1; bits 1-4: 0 = Uniswap V2
/// pair, 1 = Uniswap V3 pool, 2 = Uniswap V4 pool, 3 = Curve StableSwap-NG pool, 4 =
/// Balancer V2 pool; bits 5-7 zero). A V2 or V3 record ends there (21 bytes); a V4 record
/// goes on with the pool key: currency0 (20), currency1 (20), fee (3), tick spacing (3,
/// signed), hooks (20) — 87 bytes; a Curve record with the coin indexes in and out (1 byte
/// each) — 23 bytes; a Balancer record with the tokens in and out (20 each) — 61 bytes. A cycle has 2 to 8 hops and
/// ends in the token it starts with. V4 pools of the native currency are refused. A Curve
/// or Balancer hop cannot be first (no flash swap here): a Curve pool receives its input
/// from the hop before, like a V2 pair, and swaps it with `exchange_received`; a Balancer
/// hop's input comes to this contract, and the pool's Vault `swap`s it (GIVEN_IN), pulling
/// it under an approval of exactly that amount, set back to zero after the swap.
///
/// A V4 first hop is a flash inside one unlock of its PoolManager: swap, take the output
/// (to the next hop), run the remaining hops, then settle the input. A later V4 hop swaps,
/// settles and takes inside the unlock that is open for its PoolManager, else in an unlock
/// of its own.
///
/// Guards: only the owner (the deploying key) starts a cycle or withdraws; a swap callback
/// is accepted only from the one pool the contract is waiting for, `unlockCallback` only
/// from the one PoolManager it has just asked to unlock (two separate transient slots: a
/// pool cannot call the unlock callback, nor a manager a swap callback), and only while a
/// cycle runs, and that pool may claim no more than the input it was asked to swap (a pair:
/// exactly the output it was asked for); the start token's balance must grow by at least
/// `minProfit + coinbasePayment`; the cycle must run at or before `deadlineBlock`.
/// The coinbase payment is made last, in native currency: the contract unwraps that much
/// of the start token, so a payment needs the start token to be the wrapped native token
/// given at deployment; with any other start token the payment must be zero. The
/// contract holds no standing approval: its only approvals are a Balancer hop's, for the
/// length of that hop's swap.
contract ArenaExecutor {
    uint256 private constant HOP_BYTES = 21;
    uint256 private constant V4_HOP_BYTES = 87;
    uint256 private constant CURVE_HOP_BYTES = 23;
    uint256 private constant VAULT_HOP_BYTES = 61;
    uint256 private constant MIN_HOPS = 2;
    uint256 private constant MAX_HOPS = 8;
    uint8 private constant DIRECTION_BIT = 0x01;
    uint8 private constant KIND_V2 = 0;
    uint8 private constant KIND_V3 = 1;
    uint8 private constant KIND_V4 = 2;
    uint8 private constant KIND_CURVE = 3;
    uint8 private constant KIND_VAULT = 4;
    uint8 private constant SWAP_GIVEN_IN = 0;
    uint8 private constant RESERVED_FLAGS = 0xe0;
    uint8 private constant UNLOCK_FLASH = 0;
    uint8 private constant UNLOCK_HOP = 1;
    uint160 private constant MIN_SQRT_RATIO_PLUS_ONE = 4295128740;
    uint160 private constant MAX_SQRT_RATIO_MINUS_ONE =
        1461446703485210103287273052203988822378723970341;

    address public immutable owner;
    address public immutable wrappedNative;

    bool private transient executing;
    address private transient expectedPool;
    uint256 private transient requiredProfit;
    uint256 private transient expectedAmount;
    address private transient expectedManager;
    address private transient unlockedManager;

    event Executed(address indexed startToken, uint256 amountIn, uint256 profit, uint256 coinbasePayment);

    error NotOwner(address caller);
    error DeadlinePassed(uint256 deadlineBlock, uint256 currentBlock);
    error Reentered();
    error BadPathLength(uint256 length);
    error BadHopFlags(uint256 hop, uint8 flags);
    error NativeCurrencyHop(uint256 hop);
    error FirstHopCannotFlash(uint8 kind);
    error AmountTooLarge(uint256 amount);
    error UnexpectedCallback(address caller, address expected);
    error UnexpectedAmount(uint256 claimed, uint256 expected);
    error InsufficientProfit(int256 profit, uint256 required);
    error PaymentNeedsWrappedNative(address startToken);
    error CoinbasePaymentFailed(address coinbase, uint256 amount);
    error TransferFailed(address token, address to, uint256 amount);
    error ApprovalFailed(address token, address spender, uint256 amount);
    error UnexpectedEther(address sender);

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    modifier locked() {
        if (executing) revert Reentered();
        executing = true;
        _;
        executing = false;
    }

    constructor(address wrappedNative_) {
        owner = msg.sender;
        wrappedNative = wrappedNative_;
    }

    receive() external payable {
        if (msg.sender != wrappedNative || !executing) revert UnexpectedEther(msg.sender);
    }

    /// @notice Runs the cycle `path` with `amountIn` of its start token and returns the
    /// growth of the contract's start-token balance (before the coinbase payment).
    function execute(
        bytes calldata path,
        uint256 amountIn,
        uint256 minProfit,
        uint256 coinbasePayment,
        uint256 deadlineBlock
    ) external onlyOwner locked returns (uint256 profit) {
        if (block.number > deadlineBlock) revert DeadlinePassed(deadlineBlock, block.number);
        _checkPath(path);
        if (amountIn > uint256(int256(type(int128).max))) revert AmountTooLarge(amountIn);
        address startToken = _tokenIn(path, 0);
        if (coinbasePayment != 0 && startToken != wrappedNative) {
            revert PaymentNeedsWrappedNative(startToken);
        }
        uint256 required = minProfit + coinbasePayment;
        requiredProfit = required;
        uint256 balanceBefore = IBalance(startToken).balanceOf(address(this));
        _flashFirstHop(path, amountIn);
        uint256 balanceAfter = IBalance(startToken).balanceOf(address(this));
        if (balanceAfter < balanceBefore + required) {
            revert InsufficientProfit(int256(balanceAfter) - int256(balanceBefore), required);
        }
        profit = balanceAfter - balanceBefore;
        requiredProfit = 0;
        if (coinbasePayment != 0) _payCoinbase(coinbasePayment);
        emit Executed(startToken, amountIn, profit, coinbasePayment);
    }

    /// @notice Sends `amount` of `token` (the zero address: native currency) to `to`.
    function withdraw(address token, address to, uint256 amount) external onlyOwner locked {
        if (token == address(0)) {
            (bool ok, ) = to.call{value: amount}("");
            if (!ok) revert TransferFailed(token, to, amount);
        } else {
            _transfer(token, to, amount);
        }
    }

    /// @dev Called by a V3 pool inside `swap`. With data, this is the first hop: the
    /// remaining hops run before the pool is paid; without, a later hop: pay and return.
    function uniswapV3SwapCallback(int256 amount0Delta, int256 amount1Delta, bytes calldata data) external {
        _acceptCallback();
        bool owesToken0 = amount0Delta > 0;
        int256 owed = owesToken0 ? amount0Delta : amount1Delta;
        if (owed <= 0) revert UnexpectedCallback(msg.sender, address(0));
        _checkAmount(uint256(owed), false);
        if (data.length != 0) {
            int256 received = owesToken0 ? amount1Delta : amount0Delta;
            uint256 returned = _runHops(data, HOP_BYTES, uint256(-received));
            _checkProfit(uint256(owed), returned);
        }
        address token = owesToken0 ? IPoolTokens(msg.sender).token0() : IPoolTokens(msg.sender).token1();
        _transfer(token, msg.sender, uint256(owed));
    }

    /// @dev Called by a V2 pair that sent the first hop's output here: forward it to the
    /// second hop, run the remaining hops, then pay the pair. `data` is the amount owed
    /// (32 bytes) followed by the path.
    function uniswapV2Call(address sender, uint256 amount0, uint256 amount1, bytes calldata data) external {
        _acceptCallback();
        if (sender != address(this)) revert UnexpectedCallback(sender, address(this));
        uint256 owed = uint256(bytes32(data[:32]));
        bytes calldata path = data[32:];
        bool zeroForOne = uint8(path[20]) & DIRECTION_BIT != 0;
        uint256 received = zeroForOne ? amount1 : amount0;
        if ((zeroForOne ? amount0 : amount1) != 0) revert UnexpectedAmount(amount0 + amount1, received);
        _checkAmount(received, true);
        address next = _recipient(path, HOP_BYTES);
        if (next != address(this)) {
            address tokenOut = zeroForOne ? IPoolTokens(msg.sender).token1() : IPoolTokens(msg.sender).token0();
            _transfer(tokenOut, next, received);
        }
        _checkProfit(owed, _runHops(path, HOP_BYTES, received));
        address tokenIn = zeroForOne ? IPoolTokens(msg.sender).token0() : IPoolTokens(msg.sender).token1();
        _transfer(tokenIn, msg.sender, owed);
    }

    /// @dev Called by a PoolManager inside `unlock`. `data` is a mode byte and the hop's
    /// input (32 bytes), then for a flash (first hop) the whole path, for a later hop the
    /// recipient (20 bytes) and the hop's record. Returns the later hop's output (32 bytes).
    function unlockCallback(bytes calldata data) external returns (bytes memory result) {
        address expected = expectedManager;
        if (!executing || msg.sender != expected) revert UnexpectedCallback(msg.sender, expected);
        expectedManager = address(0);
        address outer = unlockedManager;
        unlockedManager = msg.sender;
        uint256 amountIn = uint256(bytes32(data[1:33]));
        if (uint8(data[0]) == UNLOCK_FLASH) {
            bytes calldata path = data[33:];
            (address tokenIn, address tokenOut, uint256 owed, uint256 out) = _managerSwap(msg.sender, path, amountIn);
            IManagerSwap(msg.sender).take(tokenOut, _recipient(path, V4_HOP_BYTES), out);
            _checkProfit(owed, _runHops(path, V4_HOP_BYTES, out));
            _payManager(msg.sender, tokenIn, owed);
        } else {
            address to = address(bytes20(data[33:53]));
            result = abi.encode(_managerHop(msg.sender, data[53:], amountIn, to));
        }
        unlockedManager = outer;
    }

    /// @dev A pool may claim no more than the input it was asked to swap (V3), and a
    /// pair must report exactly the output it was asked for (V2).
    function _checkAmount(uint256 claimed, bool exact) private {
        uint256 expected = expectedAmount;
        if (exact ? claimed != expected : claimed > expected) revert UnexpectedAmount(claimed, expected);
        expectedAmount = 0;
    }

    function _acceptCallback() private {
        address expected = expectedPool;
        if (!executing || msg.sender != expected) revert UnexpectedCallback(msg.sender, expected);
        expectedPool = address(0);
    }

    /// @dev The cycle returned `returned` of the start token and owes `owed` to the first
    /// pool: the difference must reach the required profit before the pool is paid.
    function _checkProfit(uint256 owed, uint256 returned) private view {
        uint256 required = requiredProfit;
        if (returned < owed + required) revert InsufficientProfit(int256(returned) - int256(owed), required);
    }

    function _flashFirstHop(bytes calldata path, uint256 amountIn) private {
        (address pool, uint8 kind, bool zeroForOne, uint256 next) = _hop(path, 0);
        if (kind == KIND_V4) {
            expectedManager = pool;
            IManagerSwap(pool).unlock(abi.encodePacked(UNLOCK_FLASH, amountIn, path));
            if (expectedManager != address(0)) revert UnexpectedCallback(address(0), pool);
            return;
        }
        expectedPool = pool;
        if (kind == KIND_V3) {
            expectedAmount = amountIn;
            IConcentratedPoolSwap(pool).swap(
                _recipient(path, next),
                zeroForOne,
                int256(amountIn),
                _priceLimit(zeroForOne),
                path
            );
        } else {
            uint256 out = _pairAmountOut(pool, zeroForOne, amountIn);
            (uint256 out0, uint256 out1) = zeroForOne ? (uint256(0), out) : (out, uint256(0));
            expectedAmount = out;
            IPairSwap(pool).swap(out0, out1, address(this), abi.encodePacked(amountIn, path));
        }
        if (expectedPool != address(0)) revert UnexpectedCallback(address(0), pool);
    }

    /// @dev Runs the hops from byte `at` of `path` on; returns the last hop's output.
    function _runHops(bytes calldata path, uint256 at, uint256 amount) private returns (uint256) {
        while (at < path.length) {
            (address pool, uint8 kind, bool zeroForOne, uint256 next) = _hop(path, at);
            address to = _recipient(path, next);
            if (kind == KIND_V4) {
                amount = _swapManaged(pool, path[at:next], amount, to);
            } else if (kind == KIND_CURVE) {
                amount = _swapCoinPool(pool, uint8(path[at + 21]), uint8(path[at + 22]), amount, to);
            } else if (kind == KIND_VAULT) {
                amount = _swapVault(pool, path[at + 21:next], amount, to);
            } else if (kind == KIND_V3) {
                amount = _swapConcentrated(pool, zeroForOne, amount, to);
            } else {
                amount = _swapPair(pool, zeroForOne, amount, to);
            }
            at = next;
        }
        return amount;
    }

    /// @dev A pair holds this hop's input already (the hop before sent it there).
    function _swapPair(address pool, bool zeroForOne, uint256 amountIn, address to) private returns (uint256 out) {
        out = _pairAmountOut(pool, zeroForOne, amountIn);
        (uint256 out0, uint256 out1) = zeroForOne ? (uint256(0), out) : (out, uint256(0));
        IPairSwap(pool).swap(out0, out1, to, "");
    }

    function _swapConcentrated(address pool, bool zeroForOne, uint256 amountIn, address to)
        private
        returns (uint256)
    {
        if (amountIn > uint256(type(int256).max)) revert AmountTooLarge(amountIn);
        expectedPool = pool;
        expectedAmount = amountIn;
        (int256 amount0, int256 amount1) =
            IConcentratedPoolSwap(pool).swap(to, zeroForOne, int256(amountIn), _priceLimit(zeroForOne), "");
        if (expectedPool != address(0)) revert UnexpectedCallback(address(0), pool);
        return uint256(-(zeroForOne ? amount1 : amount0));
    }

    /// @dev A Curve StableSwap-NG pool holds this hop's input already (the hop before sent
    /// it there): `exchange_received` swaps what it received beyond its stored balance.
    function _swapCoinPool(address pool, uint8 i, uint8 j, uint256 amountIn, address to)
        private
        returns (uint256)
    {
        return ICoinPoolSwap(pool).exchange_received(int128(uint128(i)), int128(uint128(j)), amountIn, 0, to);
    }

    /// @dev A Balancer V2 pool's hop: this contract holds the input. The pool names its
    /// Vault and id; the Vault may pull exactly this hop's input (an approval made for
    /// this swap and set back to zero right after it) and sends the output to `to`.
    /// `tokens` is the token in, then the token out.
    function _swapVault(address pool, bytes calldata tokens, uint256 amountIn, address to)
        private
        returns (uint256 out)
    {
        address vault = IVaultPool(pool).getVault();
        address tokenIn = address(bytes20(tokens[:20]));
        VaultSingleSwap memory single = VaultSingleSwap(
            IVaultPool(pool).getPoolId(),
            SWAP_GIVEN_IN,
            tokenIn,
            address(bytes20(tokens[20:40])),
            amountIn,
            ""
        );
        _approve(tokenIn, vault, amountIn);
        out = IVaultSwap(vault).swap(single, VaultFundManagement(address(this), false, to, false), 0, block.timestamp);
        _approve(tokenIn, vault, 0);
    }

    /// @dev A later V4 hop: this contract holds its input. Inside the manager's open unlock
    /// it swaps, settles and takes right away; otherwise it opens an unlock for the hop.
    function _swapManaged(address manager, bytes calldata record, uint256 amountIn, address to)
        private
        returns (uint256)
    {
        if (unlockedManager == manager) return _managerHop(manager, record, amountIn, to);
        expectedManager = manager;
        bytes memory result = IManagerSwap(manager).unlock(abi.encodePacked(UNLOCK_HOP, amountIn, to, record));
        if (expectedManager != address(0)) revert UnexpectedCallback(address(0), manager);
        return abi.decode(result, (uint256));
    }

    /// @dev Swap, pay the input owed, send the output to `to`; inside the manager's unlock.
    function _managerHop(address manager, bytes calldata record, uint256 amountIn, address to)
        private
        returns (uint256 out)
    {
        (address tokenIn, address tokenOut, uint256 owed, uint256 received) = _managerSwap(manager, record, amountIn);
        _payManager(manager, tokenIn, owed);
        IManagerSwap(manager).take(tokenOut, to, received);
        out = received;
    }

    /// @dev The exact-input swap of the V4 record at the start of `record`: what this
    /// contract owes `manager` of the input token and is owed of the output token.
    function _managerSwap(address manager, bytes calldata record, uint256 amountIn)
        private
        returns (address tokenIn, address tokenOut, uint256 owed, uint256 out)
    {
        if (amountIn > uint256(int256(type(int128).max))) revert AmountTooLarge(amountIn);
        bool zeroForOne = uint8(record[20]) & DIRECTION_BIT != 0;
        ManagerPoolKey memory key = _poolKey(record);
        (tokenIn, tokenOut) = zeroForOne ? (key.currency0, key.currency1) : (key.currency1, key.currency0);
        int256 delta = IManagerSwap(manager).swap(
            key,
            ManagerSwapParams(zeroForOne, -int256(amountIn), _priceLimit(zeroForOne)),
            ""
        );
        int256 amount0 = delta >> 128;
        int256 amount1 = int256(int128(delta));
        (int256 paid, int256 got) = zeroForOne ? (amount0, amount1) : (amount1, amount0);
        if (paid > 0 || got < 0 || uint256(-paid) > amountIn) revert UnexpectedAmount(uint256(-paid), amountIn);
        owed = uint256(-paid);
        out = uint256(got);
    }

    function _payManager(address manager, address token, uint256 amount) private {
        IManagerSwap(manager).sync(token);
        _transfer(token, manager, amount);
        IManagerSwap(manager).settle();
    }

    function _poolKey(bytes calldata record) private pure returns (ManagerPoolKey memory key) {
        key.currency0 = address(bytes20(record[21:41]));
        key.currency1 = address(bytes20(record[41:61]));
        key.fee = uint24(bytes3(record[61:64]));
        key.tickSpacing = int24(uint24(bytes3(record[64:67])));
        key.hooks = address(bytes20(record[67:87]));
    }

    function _pairAmountOut(address pool, bool zeroForOne, uint256 amountIn) private view returns (uint256) {
        (uint112 reserve0, uint112 reserve1, ) = IPairSwap(pool).getReserves();
        (uint256 reserveIn, uint256 reserveOut) = zeroForOne
            ? (uint256(reserve0), uint256(reserve1))
            : (uint256(reserve1), uint256(reserve0));
        uint256 inWithFee = amountIn * 997;
        return (inWithFee * reserveOut) / (reserveIn * 1000 + inWithFee);
    }

    function _payCoinbase(uint256 amount) private {
        IWrappedNative(wrappedNative).withdraw(amount);
        (bool ok, ) = block.coinbase.call{value: amount}("");
        if (!ok) revert CoinbasePaymentFailed(block.coinbase, amount);
    }

    function _approve(address token, address spender, uint256 amount) private {
        (bool ok, bytes memory result) = token.call(abi.encodeWithSelector(0x095ea7b3, spender, amount));
        if (!ok || (result.length != 0 && !abi.decode(result, (bool)))) {
            revert ApprovalFailed(token, spender, amount);
        }
    }

    function _transfer(address token, address to, uint256 amount) private {
        (bool ok, bytes memory result) = token.call(abi.encodeWithSelector(0xa9059cbb, to, amount));
        if (!ok || (result.length != 0 && !abi.decode(result, (bool)))) {
            revert TransferFailed(token, to, amount);
        }
    }

    /// @dev 2 to 8 records of known kinds that end exactly at the end of `path`, no V4
    /// pool of the native currency (the zero address, which a token transfer cannot pay).
    function _checkPath(bytes calldata path) private pure {
        uint256 length = path.length;
        uint256 at = 0;
        uint256 hops = 0;
        while (at < length) {
            if (at + HOP_BYTES > length || hops == MAX_HOPS) revert BadPathLength(length);
            uint8 flags = uint8(path[at + 20]);
            uint8 kind = flags >> 1;
            if (flags & RESERVED_FLAGS != 0 || kind > KIND_VAULT) revert BadHopFlags(hops, flags);
            if (hops == 0 && kind >= KIND_CURVE) revert FirstHopCannotFlash(kind);
            uint256 size = _recordBytes(kind);
            if (at + size > length) revert BadPathLength(length);
            if (kind == KIND_V4 && bytes20(path[at + 21:at + 41]) == bytes20(0)) revert NativeCurrencyHop(hops);
            at += size;
            ++hops;
        }
        if (hops < MIN_HOPS) revert BadPathLength(length);
    }

    /// @dev The record at byte `at`: its address, kind, direction, and where the next starts.
    function _hop(bytes calldata path, uint256 at)
        private
        pure
        returns (address pool, uint8 kind, bool zeroForOne, uint256 next)
    {
        pool = address(bytes20(path[at:at + 20]));
        uint8 flags = uint8(path[at + 20]);
        kind = flags >> 1;
        zeroForOne = flags & DIRECTION_BIT != 0;
        next = at + _recordBytes(kind);
    }

    function _recordBytes(uint8 kind) private pure returns (uint256) {
        if (kind == KIND_V4) return V4_HOP_BYTES;
        if (kind == KIND_VAULT) return VAULT_HOP_BYTES;
        return kind == KIND_CURVE ? CURVE_HOP_BYTES : HOP_BYTES;
    }

    /// @dev Where the hop before the record at byte `at` sends its output: a V2 pair takes
    /// its input up front, a V3 pool is paid from this contract inside its callback, a V4
    /// pool through its manager by this contract, a Curve pool takes its input up front, a
    /// Balancer pool's Vault pulls it from this contract, and the last hop ends here.
    function _recipient(bytes calldata path, uint256 at) private view returns (address) {
        if (at >= path.length) return address(this);
        (address pool, uint8 kind, , ) = _hop(path, at);
        return kind == KIND_V2 || kind == KIND_CURVE ? pool : address(this);
    }

    function _tokenIn(bytes calldata path, uint256 at) private view returns (address) {
        (address pool, uint8 kind, bool zeroForOne, ) = _hop(path, at);
        if (kind == KIND_V4) {
            return address(bytes20(zeroForOne ? path[at + 21:at + 41] : path[at + 41:at + 61]));
        }
        return zeroForOne ? IPoolTokens(pool).token0() : IPoolTokens(pool).token1();
    }

    function _priceLimit(bool zeroForOne) private pure returns (uint160) {
        return zeroForOne ? MIN_SQRT_RATIO_PLUS_ONE : MAX_SQRT_RATIO_MINUS_ONE;
    }
}
