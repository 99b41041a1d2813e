// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

interface IExecutorEntry {
    function execute(bytes calldata path, uint256 amountIn, uint256 minProfit, uint256 payment, uint256 deadline)
        external
        returns (uint256);
    function withdraw(address token, address to, uint256 amount) external;
}

interface IFlashCallbacks {
    function uniswapV3SwapCallback(int256 amount0Delta, int256 amount1Delta, bytes calldata data) external;
    function uniswapV2Call(address sender, uint256 amount0, uint256 amount1, bytes calldata data) external;
}

interface IUnlockCallback {
    function unlockCallback(bytes calldata data) external returns (bytes memory);
}

/// @title CallbackProbe
/// @notice A contract posing as a pool, for tests only: it calls a target's swap
/// callbacks the way a real pool would, claiming tokens it is owed but never sent. Put in
/// a path as a V3 pool, its `swap` overclaims by one (mode 0) or re-enters the caller's
/// `execute` (mode 1) or `withdraw` (mode 2) or calls its `unlockCallback` asking to be
/// paid a later V4 hop's input (mode 3); as a V2 pair, it overstates its output; as a V4
/// PoolManager, its `unlock` calls the V3 swap callback instead of `unlockCallback`.
contract CallbackProbe {
    uint8 public mode;

    function setMode(uint8 mode_) external {
        mode = mode_;
    }

    function swap(address, bool, int256 amountSpecified, uint160, bytes calldata data)
        external
        returns (int256, int256)
    {
        if (mode == 1) {
            IExecutorEntry(msg.sender).execute(data, uint256(amountSpecified), 0, 0, type(uint256).max);
        } else if (mode == 2) {
            IExecutorEntry(msg.sender).withdraw(address(this), address(this), 1);
        } else if (mode == 3) {
            IUnlockCallback(msg.sender).unlockCallback(
                abi.encodePacked(uint8(1), uint256(amountSpecified), address(this), data)
            );
        } else {
            IFlashCallbacks(msg.sender).uniswapV3SwapCallback(amountSpecified + 1, -1, data);
        }
        return (amountSpecified, -1);
    }

    function probeConcentrated(address target, int256 amount0Delta, int256 amount1Delta, bytes calldata data)
        external
    {
        IFlashCallbacks(target).uniswapV3SwapCallback(amount0Delta, amount1Delta, data);
    }

    function probeUnlock(address target, bytes calldata data) external {
        IUnlockCallback(target).unlockCallback(data);
    }

    /// @dev As a V4 PoolManager: calls back the wrong callback, claiming 10^18.
    function unlock(bytes calldata data) external returns (bytes memory) {
        IFlashCallbacks(msg.sender).uniswapV3SwapCallback(1e18, -1, data);
        return "";
    }

    function probePair(address target, address sender, uint256 amount0, uint256 amount1, bytes calldata data)
        external
    {
        IFlashCallbacks(target).uniswapV2Call(sender, amount0, amount1, data);
    }

    /// @dev As a V2 pair: reserves of 10^18 each, and a flash swap that reports one wei
    /// more output than it was asked for (and sends nothing).
    function getReserves() external pure returns (uint112, uint112, uint32) {
        return (1e18, 1e18, 0);
    }

    function swap(uint256 amount0Out, uint256 amount1Out, address to, bytes calldata data) external {
        IFlashCallbacks(to).uniswapV2Call(msg.sender, amount0Out == 0 ? 0 : amount0Out + 1, amount1Out == 0 ? 0 : amount1Out + 1, data);
    }

    function balanceOf(address) external pure returns (uint256) {
        return 0;
    }

    function token0() external view returns (address) {
        return address(this);
    }

    function token1() external view returns (address) {
        return address(this);
    }
}
